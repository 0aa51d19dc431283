"""The connecting commands: ssh, rdp, tunnel/proxy, file upload/download, ssh-config, and what they share."""
