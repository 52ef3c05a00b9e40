# git: clone and fetch public repositories over https, through the proxy.
#
# Everything from the default profile, plus the loopback socket mode and the
# broker's HTTP(S) proxy (docs/PROFILES.md#proxy), so an unmodified git
# reaches GitHub and GitLab with nothing to configure.  Smart HTTP reads only:
# the ref advertisement and git-upload-pack (clone, fetch, pull); pushing
# (git-receive-pack) is denied.  The base is the default installed beside
# this file, included by path.
include ./default.profile

socket inet loopback
proxy on

fetch allow GET https://github.com/**/info/refs query service=git-upload-pack
fetch allow POST https://github.com/**/git-upload-pack max-body 64M response 4G timeout 30m
fetch allow GET https://gitlab.com/**/info/refs query service=git-upload-pack
fetch allow POST https://gitlab.com/**/git-upload-pack max-body 64M response 4G timeout 30m
