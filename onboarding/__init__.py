"""
A customer's arrival, where accounts and billing meet: a tenant opens with its
wallet, a person signs up, proves an address (earning the starter credit) or
changes it, and joins a tenant by invitation.

The apps depend one way: the screens (portal, console, api, the admin) call
onboarding, accounts, billing, relay and audit; onboarding calls accounts and
billing; billing reads accounts' models and calls its services; accounts
imports nothing of billing.
"""
