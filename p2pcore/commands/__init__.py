"""Sub-commands of `p2p`, each a module with `register(app)`; p2pcore.cli.COMMAND_MODULES lists them."""
