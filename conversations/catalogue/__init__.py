"""The model catalogue beside the gateway: which models exist and how to reach them."""
