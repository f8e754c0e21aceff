"""One module per job: read -> transforms -> write -> reconcile -> summary. The only place with actions."""
