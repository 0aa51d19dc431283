"""A stand-in for azure-cli's context where a command registers an event handler (exit_status.exit_after_output)."""


class RecordingCli:
    """``events``: (event, handler) as registered; ``handlers``: the handlers alone, in that order."""

    def __init__(self):
        self.events = []

    def register_event(self, event, handler):
        self.events.append((event, handler))

    @property
    def handlers(self):
        return [handler for _, handler in self.events]
