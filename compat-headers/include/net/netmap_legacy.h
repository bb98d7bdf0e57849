/* net/netmap_legacy.h -- netmapd compatibility header.
 * The legacy definitions (struct nmreq, NIOCREGIF, ...) live in net/netmap.h;
 * this file exists for programs that include it by name. */
#ifndef NETMAPD_COMPAT_NET_NETMAP_LEGACY_H
#define NETMAPD_COMPAT_NET_NETMAP_LEGACY_H
#include <net/netmap.h>
#endif
