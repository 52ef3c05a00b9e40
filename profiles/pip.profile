# pip: install Python packages from PyPI, through the proxy.
#
# Everything from the default profile, plus the loopback socket mode and the
# broker's HTTP(S) proxy (docs/PROFILES.md#proxy), so an unmodified pip (and
# python3 -m venv, uv's pip, requests...) reaches PyPI with nothing to
# configure.  Only reads: the index and the package files.  The base is the
# default installed beside this file, included by path.
include ./default.profile

socket inet loopback
proxy on

# pip keeps its cache in $HOME; a fresh jail has nothing to prompt for.
env set PIP_NO_INPUT=1
env set PIP_DISABLE_PIP_VERSION_CHECK=1

# The simple index (PEP 503/691) and the files it links to.  Wheels of large
# packages run to hundreds of megabytes.
fetch allow GET,HEAD https://pypi.org/simple/**
fetch allow GET,HEAD https://files.pythonhosted.org/packages/** response 4G timeout 30m
