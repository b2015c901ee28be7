"""How Bastion runs cloud code: the loader, the registry the decorators fill, the runtime the
pipelines call, jobs and their scheduler, webhooks, --dev reloads, the run log. Private: cloud
code uses the façade, ``from bastion import cloud``.
"""
