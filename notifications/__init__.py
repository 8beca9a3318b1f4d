"""Notifications: emails (with ICS) and SMS to usagers, emails to agents.

Scheduled rows are written in the transaction of the RDV's change
(``booking.notifications`` decides, ``storage.notifications`` stores); the
worker here claims the due ones, renders them from the package's Jinja2
templates, sends them through SMTP or an SMS provider and logs a receipt.
"""
