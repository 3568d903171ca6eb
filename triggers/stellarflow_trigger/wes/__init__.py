"""GA4GH WES 1.1 API and the web page over the trigger ledger (`stellarflow serve`)."""
