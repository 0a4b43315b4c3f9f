"""One `p2p new plugin` template per kind of the table of kinds (`p2pcore.kinds.KINDS`): the module
`p2pcore.scaffold.templates.<kind>` defines `TEMPLATE`."""
