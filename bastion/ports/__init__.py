"""The contracts the domain needs from the outside world; adapters implement them."""
