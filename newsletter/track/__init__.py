"""Tracking: signed tokens, the tracking web app, the SendGrid event webhook, event storage."""
