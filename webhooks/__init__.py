"""Webhooks for the organisations' IT departments: endpoints' targets, the
RDV-SP-compatible payload, signatures, and the delivery worker that reads the
outbox."""
