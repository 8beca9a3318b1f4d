"""Microsoft 365: agents' RDVs pushed into their Outlook calendars through Graph."""
