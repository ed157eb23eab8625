//! A small async front over rtnetlink for the calls berth makes: links
//! (bridge, veth), addresses, routes. One [`Nl`] talks to one network
//! namespace: its socket is opened there (see [`crate::sys::in_netns`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteScope, RouteType,
};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::cidr::Cidr;
use crate::error::NetError;
use crate::model::MacAddr;
use crate::sys::{in_netns, NetnsRef};

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const ENOENT: i32 = 2;

/// A netlink connection into one network namespace.
#[derive(Clone)]
pub(crate) struct Nl {
    handle: rtnetlink::Handle,
}

/// What berth needs to know of a link.
#[derive(Clone, Debug)]
pub(crate) struct LinkInfoLite {
    pub(crate) index: u32,
    pub(crate) name: String,
    pub(crate) kind: Option<String>,
    pub(crate) master: Option<u32>,
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

impl Nl {
    /// Opens a connection in `ns`; its I/O task runs on the current tokio
    /// runtime and ends when the last clone of this handle is dropped.
    pub(crate) fn connect(ns: &NetnsRef) -> Result<Nl, NetError> {
        let rt = tokio::runtime::Handle::current();
        let made = in_netns(ns, || {
            let _entered = rt.enter();
            rtnetlink::new_connection()
        })?;
        let (conn, handle, _) =
            made.map_err(|e| NetError::io("open netlink socket in", ns.describe(), e))?;
        rt.spawn(conn);
        Ok(Nl { handle })
    }

    pub(crate) async fn link(&self, name: &str) -> Result<Option<LinkInfoLite>, NetError> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(Some(lite(&m))),
            Ok(None) => Ok(None),
            Err(e) if matches!(errno(&e), Some(ENODEV) | Some(ENOENT)) => Ok(None),
            Err(e) => Err(NetError::netlink("get link", name, e)),
        }
    }

    pub(crate) async fn index(&self, name: &str) -> Result<u32, NetError> {
        self.link(name)
            .await?
            .map(|l| l.index)
            .ok_or_else(|| NetError::LinkNotFound(name.to_string()))
    }

    pub(crate) async fn links(&self) -> Result<Vec<LinkInfoLite>, NetError> {
        let mut out = Vec::new();
        let mut s = self.handle.link().get().execute();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(|e| NetError::netlink("list links", "", e))?
        {
            out.push(lite(&m));
        }
        Ok(out)
    }

    /// Creates a bridge (up). An existing bridge of that name is adopted.
    pub(crate) async fn add_bridge(
        &self,
        name: &str,
        mtu: Option<u32>,
    ) -> Result<(u32, bool), NetError> {
        if let Some(l) = self.link(name).await? {
            if l.kind.as_deref() != Some("bridge") {
                return Err(NetError::netlink(
                    "add bridge",
                    name,
                    rtnetlink::Error::NamespaceError(format!("{name} exists and is not a bridge")),
                ));
            }
            self.set_up(l.index).await?;
            return Ok((l.index, false));
        }
        let mut b = LinkBridge::new(name).up();
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.handle
            .link()
            .add(b.build())
            .execute()
            .await
            .map_err(|e| NetError::netlink("add bridge", name, e))?;
        Ok((self.index(name).await?, true))
    }

    pub(crate) async fn set_up(&self, index: u32) -> Result<(), NetError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| NetError::netlink("set link up", index, e))
    }

    /// Deletes a link; a link that is already gone is fine.
    pub(crate) async fn del_link_by_name(&self, name: &str) -> Result<(), NetError> {
        let Some(l) = self.link(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(l.index).execute().await {
            Err(e) if !matches!(errno(&e), Some(ENODEV) | Some(ENOENT)) => {
                Err(NetError::netlink("delete link", name, e))
            }
            _ => Ok(()),
        }
    }

    /// Adds an address; one already there is fine.
    pub(crate) async fn add_address(&self, index: u32, addr: Cidr) -> Result<(), NetError> {
        let mut req = self.handle.address().add(index, addr.addr(), addr.prefix());
        if addr.addr().is_ipv6() {
            // No duplicate address detection: the address is usable at once
            // (IPAM already guarantees it is unique), as Docker does.
            use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await {
            Err(e) if errno(&e) != Some(EEXIST) => Err(NetError::netlink("add address", addr, e)),
            _ => Ok(()),
        }
    }

    /// Creates a veth pair: `host` (up, in bridge `master`) here, `peer`
    /// (with `mac`, down) directly in the namespace pinned by `peer_ns`.
    /// The peer cannot be brought up in the same request: the kernel opens
    /// it before the pair is linked (`veth_open` answers ENOTCONN).
    pub(crate) async fn add_veth(
        &self,
        host: &str,
        master: u32,
        peer: &str,
        peer_ns: &std::fs::File,
        mac: MacAddr,
        mtu: Option<u32>,
    ) -> Result<(), NetError> {
        let mut p = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .setns_by_fd(peer_ns.as_raw_fd())
            .address(mac.0.to_vec());
        let mut h = LinkVeth::new(host, peer).controller(master).up();
        if let Some(m) = mtu {
            p = p.mtu(m);
            h = h.mtu(m);
        }
        let msg = h
            .set_info_data(InfoData::Veth(InfoVeth::Peer(p.build())))
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| NetError::netlink("add veth", format!("{host} (peer {peer})"), e))
    }

    /// Lets frames leave a bridge port they came in on (a container reaching
    /// its own published port through the host).
    pub(crate) async fn set_hairpin(&self, index: u32) -> Result<(), NetError> {
        let msg = LinkMessageBuilder::<LinkUnspec>::new()
            .index(index)
            .set_port_kind(InfoPortKind::Bridge)
            .set_port_data(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                true,
            )]))
            .build();
        self.handle
            .link()
            .set_port(msg)
            .execute()
            .await
            .map_err(|e| NetError::netlink("set hairpin mode", index, e))
    }

    /// Adds (or replaces) the default route via `gw` out of `oif`.
    pub(crate) async fn replace_default_route(&self, gw: IpAddr, oif: u32) -> Result<(), NetError> {
        let msg = match gw {
            IpAddr::V4(g) => RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(g)
                .output_interface(oif)
                .build(),
            IpAddr::V6(g) => RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(g)
                .output_interface(oif)
                .build(),
        };
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|e| NetError::netlink("add default route via", gw, e))
    }

    async fn routes(&self, v6: bool) -> Result<Vec<RouteMessage>, NetError> {
        let q = if v6 {
            RouteMessageBuilder::<Ipv6Addr>::new().build()
        } else {
            RouteMessageBuilder::<Ipv4Addr>::new().build()
        };
        let mut s = self.handle.route().get(q).execute();
        let mut out = Vec::new();
        while let Some(r) = s
            .try_next()
            .await
            .map_err(|e| NetError::netlink("list routes", "", e))?
        {
            out.push(r);
        }
        Ok(out)
    }

    /// The destinations of the main table's IPv4 routes, default route left
    /// out (what a new default subnet must not overlap).
    pub(crate) async fn route_prefixes_v4(&self) -> Result<Vec<Cidr>, NetError> {
        let mut out = Vec::new();
        for r in self.routes(false).await? {
            if r.header.destination_prefix_length == 0
                || r.header.table != RouteMessage::default_main()
                || r.header.kind != RouteType::Unicast
                || r.header.scope == RouteScope::Host
            {
                continue;
            }
            for a in &r.attributes {
                if let RouteAttribute::Destination(RouteAddress::Inet(ip)) = a {
                    if let Ok(c) = Cidr::new(IpAddr::V4(*ip), r.header.destination_prefix_length) {
                        out.push(c.masked());
                    }
                }
            }
        }
        Ok(out)
    }
}

trait MainTable {
    fn default_main() -> u8;
}

impl MainTable for RouteMessage {
    fn default_main() -> u8 {
        rtnetlink::packet_route::route::RouteHeader::RT_TABLE_MAIN
    }
}

fn lite(m: &LinkMessage) -> LinkInfoLite {
    let mut out = LinkInfoLite {
        index: m.header.index,
        name: String::new(),
        kind: None,
        master: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => out.name = n.clone(),
            LinkAttribute::Controller(i) => out.master = Some(*i),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        out.kind = Some(match k {
                            InfoKind::Bridge => "bridge".to_string(),
                            InfoKind::Veth => "veth".to_string(),
                            other => format!("{other:?}").to_lowercase(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    out
}
