"""The contract both sides share: the ticket format and the validators for names, hosts, users and paths.

Standard library only: the runtime side imports it before anything else is installed.
"""
