"""A real OpenID Connect provider for the tests: django-oauth-toolkit in its own process.

`serve.py` starts it on a port with RS256 keys made at start, a confidential client per
chatweb provider name, users with a `groups` claim, and a switch (`faults.py`) that makes
its answers wrong in the ways real providers go wrong.
"""
