# npm: install packages from the npm registry, through the proxy.
#
# Everything from the default profile, plus the loopback socket mode and the
# broker's HTTP(S) proxy (docs/PROFILES.md#proxy), so an unmodified npm
# (and yarn, pnpm) reaches registry.npmjs.org with nothing to configure.
# Only reads: package documents and tarballs; no publish, no login.  The
# base is the default installed beside this file, included by path.
include ./default.profile

socket inet loopback
proxy on

# `npm audit` and the funding notice POST the dependency tree to the
# registry; they are off here rather than denied on every install.
env set npm_config_audit=false
env set npm_config_fund=false
env set npm_config_update_notifier=false
# The cache on the jail's private /tmp: $HOME may not be the agent's to write
# (started by root, the agent runs as nobody).
env set npm_config_cache=/tmp/.npm

fetch allow GET,HEAD https://registry.npmjs.org/** response 1G timeout 10m
