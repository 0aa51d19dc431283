"""What only tests, the benchmark and the demo use: the emulator as a subprocess, a real sshd, loopback backends."""
