# offline: no way out at all.
#
# Everything from the default profile, and no fetch rules: the broker has
# nothing it may fetch, so the agent has no path to the network.  This profile
# will never gain fetch rules; a profile that needs the network is a different
# profile that includes this one's base (default) and adds its own.  The base
# is the default installed beside this file, included by path.
include ./default.profile
