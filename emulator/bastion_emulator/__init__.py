"""A local HTTPS stand-in for the Azure pieces bastion-native touches; test and demo use only.

``server`` serves it (``python -m bastion_emulator serve``) over ``state`` (the emulator's Azure, from a seed),
``certs``, ``identity`` (Entra and cloud metadata), ``request_log`` and ``responses``; ``arm/`` is Azure Resource
Manager, ``dataplane/`` the Bastion data plane, and ``testing/`` what only tests, the benchmark and the demo use.
"""
