"""Money: token usage recorded per response, quotas that hold and settle it, the usage page."""
