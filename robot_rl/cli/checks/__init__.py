"""What each verb refuses before any work starts: one ConfigError sentence per bad input."""
