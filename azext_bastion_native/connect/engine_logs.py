"""Where the engine's log lines go: dataplane/ and relay/ log with the standard logging module (they know nothing
of az), so the package's logger hangs under az's own and follows --verbose/--debug/--only-show-errors."""
import logging

PACKAGE_LOGGER = 'azext_bastion_native'


def route_engine_logs():
    """dataplane/ and relay/ log with the standard logging module (they know nothing of az); hang the package's
    logger under az's 'cli' logger so their lines follow --verbose/--debug/--only-show-errors like az's own."""
    logging.getLogger(PACKAGE_LOGGER).parent = logging.getLogger('cli')
