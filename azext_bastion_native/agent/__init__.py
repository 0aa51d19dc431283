"""The connection agent: one long-lived process per user and az configuration that keeps what each ssh connection
through Bastion needs (ARM token, hosts, warm TLS) and relays connections asked for on a private Unix socket."""
