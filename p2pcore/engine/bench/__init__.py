"""`p2p bench`: a recipe's step and translation cost measured in one process, and each engine option off and on."""
