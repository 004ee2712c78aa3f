/* tsfig-runtime netns: network sandboxes made and configured in batches, one process for many containers (see
 * native/PROTOCOL.md). The engine used to spend an `unshare` and an `nsenter ip -batch` process per container,
 * under its network lock; `up` of 50 services spawned 100 of them one after the other.
 *
 *   netns create FILE...   for each FILE (an existing empty file): a new network namespace bind-mounted on it
 *                          (as `ip netns add` does) with `lo` up, and IPv6 off for the interfaces made in it later.
 *   netns config           reads lines `NETNS IFNAME ADDRESS PREFIXLEN GATEWAY|-` from stdin; in NETNS: turns IPv6
 *                          off on IFNAME (no router advertisements), sets its IPv4 address, brings it up and, with a
 *                          gateway, makes it the default route.
 *
 * One line per item on stdout, in order: `ok` or `error <message>`. An item's failure does not stop the others;
 * the exit code is 0 when every item succeeded, 1 otherwise, 2 for a usage error. */
#include "commands.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#define WHY_SIZE 256

static int fail(char *why, const char *what, const char *name)
{
    snprintf(why, WHY_SIZE, "%s `%s`: %s", what, name, strerror(errno));
    return -1;
}

static int set_ifname(struct ifreq *ifr, const char *ifname)
{
    if (strlen(ifname) >= IFNAMSIZ) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(ifr, 0, sizeof *ifr);
    memcpy(ifr->ifr_name, ifname, strlen(ifname) + 1);
    return 0;
}

static int link_up(int sock, const char *ifname)
{
    struct ifreq ifr;
    if (set_ifname(&ifr, ifname) < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP;
    return ioctl(sock, SIOCSIFFLAGS, &ifr);
}

static void put_in_addr(struct sockaddr *sa, in_addr_t addr)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = addr;
    memcpy(sa, &sin, sizeof sin);
}

/* Writes value to a file of /proc/sys/net of the calling process's network namespace. A kernel without IPv6 has no
 * such file: nothing to turn off then. */
static int write_net_sysctl(const char *file, const char *value)
{
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    ssize_t n = write(fd, value, strlen(value));
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)strlen(value) ? 0 : -1;
}

/* Networks are IPv4 only: an interface of a sandbox does no IPv6, so it neither configures itself from router
 * advertisements another container sends (it has NET_RAW) nor sends any (CVE-2020-13401 class). lo keeps ::1. */
static int no_ipv6(const char *ifname, char *why)
{
    char file[128];
    snprintf(file, sizeof file, "/proc/sys/net/ipv6/conf/%s/accept_ra", ifname);
    if (write_net_sysctl(file, "0") < 0)
        return fail(why, "turn off router advertisements on", ifname);
    snprintf(file, sizeof file, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
    if (write_net_sysctl(file, "1") < 0)
        return fail(why, "turn off IPv6 on", ifname);
    return 0;
}

static int create_one(const char *file, char *why)
{
    if (file[0] != '/') {
        errno = EINVAL;
        return fail(why, "not an absolute path", file);
    }
    /* The calling process moves into the new namespace; the previous one (the host's, or the last sandbox made,
     * which its bind mount keeps alive) is left behind. */
    if (unshare(CLONE_NEWNET) < 0)
        return fail(why, "unshare(CLONE_NEWNET) for", file);
    if (mount("/proc/self/ns/net", file, NULL, MS_BIND, NULL) < 0)
        return fail(why, "bind-mount the namespace on", file);
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || link_up(sock, "lo") < 0) {
        int saved = errno;
        if (sock >= 0)
            close(sock);
        umount2(file, MNT_DETACH);
        errno = saved;
        return fail(why, "bring lo up in", file);
    }
    close(sock);
    /* Interfaces made in this namespace later (the containers' veth ends) start with IPv6 off. */
    if (no_ipv6("default", why) < 0) {
        umount2(file, MNT_DETACH);
        return -1;
    }
    return 0;
}

static int config_one(const char *netns, const char *ifname, const char *address, const char *prefix,
                      const char *gateway, char *why)
{
    struct in_addr addr, gw = { 0 };
    char *end = NULL;
    long bits = strtol(prefix, &end, 10);
    if (inet_pton(AF_INET, address, &addr) != 1 || *end != '\0' || bits < 0 || bits > 32 ||
        (strcmp(gateway, "-") != 0 && inet_pton(AF_INET, gateway, &gw) != 1)) {
        errno = EINVAL;
        return fail(why, "bad address line for", ifname);
    }
    int fd = open(netns, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return fail(why, "open", netns);
    if (setns(fd, CLONE_NEWNET) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return fail(why, "join the network namespace", netns);
    }
    close(fd);
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return fail(why, "socket in", netns);
    struct ifreq ifr;
    int rc = 0;
    in_addr_t mask = bits == 0 ? 0 : htonl(0xffffffffu << (32 - bits));
    if (set_ifname(&ifr, ifname) < 0)
        rc = fail(why, "interface name", ifname);
    if (rc == 0) {
        put_in_addr(&ifr.ifr_addr, addr.s_addr);
        if (ioctl(sock, SIOCSIFADDR, &ifr) < 0)
            rc = fail(why, "set the address of", ifname);
    }
    if (rc == 0) {
        put_in_addr(&ifr.ifr_netmask, mask);
        if (ioctl(sock, SIOCSIFNETMASK, &ifr) < 0)
            rc = fail(why, "set the netmask of", ifname);
    }
    if (rc == 0 && no_ipv6(ifname, why) < 0)
        rc = -1;
    if (rc == 0 && link_up(sock, ifname) < 0)
        rc = fail(why, "bring up", ifname);
    if (rc == 0 && strcmp(gateway, "-") != 0) {
        /* `ip route replace default via GATEWAY dev IFNAME`: a default route already there is replaced. */
        struct rtentry rt;
        memset(&rt, 0, sizeof rt);
        put_in_addr(&rt.rt_dst, INADDR_ANY);
        put_in_addr(&rt.rt_genmask, INADDR_ANY);
        put_in_addr(&rt.rt_gateway, gw.s_addr);
        rt.rt_flags = RTF_UP | RTF_GATEWAY;
        rt.rt_dev = (char *)ifname;
        int added = ioctl(sock, SIOCADDRT, &rt);
        if (added < 0 && errno == EEXIST) {
            struct rtentry old;
            memset(&old, 0, sizeof old);
            put_in_addr(&old.rt_dst, INADDR_ANY);
            put_in_addr(&old.rt_genmask, INADDR_ANY);
            (void)ioctl(sock, SIOCDELRT, &old);
            added = ioctl(sock, SIOCADDRT, &rt);
        }
        if (added < 0)
            rc = fail(why, "set the default route via", gateway);
    }
    close(sock);
    return rc;
}

static int report(int rc, const char *why)
{
    if (rc == 0)
        fputs("ok\n", stdout);
    else
        fprintf(stdout, "error %s\n", why);
    return rc;
}

static int cmd_create(int argc, char **argv)
{
    int status = 0;
    for (int i = 0; i < argc; i++) {
        char why[WHY_SIZE] = "";
        if (report(create_one(argv[i], why), why) < 0)
            status = 1;
    }
    return status;
}

static int cmd_config(void)
{
    int status = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) >= 0) {
        char *fields[6] = { 0 };
        int count = 0;
        char *save = NULL;
        for (char *tok = strtok_r(line, " \t\n", &save); tok != NULL && count < 6; tok = strtok_r(NULL, " \t\n", &save))
            fields[count++] = tok;
        if (count == 0)
            continue;
        char why[WHY_SIZE] = "";
        int rc;
        if (count != 5) {
            snprintf(why, sizeof why, "expected `NETNS IFNAME ADDRESS PREFIXLEN GATEWAY|-`");
            rc = -1;
        } else
            rc = config_one(fields[0], fields[1], fields[2], fields[3], fields[4], why);
        if (report(rc, why) < 0)
            status = 1;
    }
    free(line);
    return status;
}

int tsfig_cmd_netns(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "create") == 0)
        return cmd_create(argc - 2, argv + 2);
    if (argc == 2 && strcmp(argv[1], "config") == 0)
        return cmd_config();
    fprintf(stderr, "usage: tsfig-runtime netns create FILE... | netns config < LINES\n");
    return 2;
}
