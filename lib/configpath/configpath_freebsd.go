package configpath

// Global is the global configuration file on FreeBSD.
const Global = "/usr/local/etc/envhooks.conf"
