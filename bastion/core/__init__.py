"""What Bastion is, with no I/O: names, types, values, schemas, ACLs, identity, the query meaning."""
