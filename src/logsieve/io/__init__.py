"""Reading raw logs and writing results safely."""
