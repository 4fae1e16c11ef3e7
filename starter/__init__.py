"""Ways into warroom: the Slack ingress, the CLI and the programmatic API (`starter.incidents`)."""
