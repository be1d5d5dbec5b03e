//! Which server each request goes to, when the generator drives several
//! nodes of one deployment (a cluster on PostgreSQL and Redis).
//!
//! A deployment's cursor is valid on every node, so a client may poll
//! anywhere. Two shapes are measured: every client keeps to one node
//! (client `i` on node `i % n`, as behind a balancer that hashes the
//! client's address), or every request goes to the next node (a
//! round-robin balancer with no sticky sessions). With one server both
//! are the single-server generator as it always was.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::conn::Conn;

/// How a client's requests are spread over the servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Spread {
    /// Client `i` sends every request to server `i % n`.
    #[default]
    Sticky,
    /// Every poll and every send goes to the next server after the
    /// client's last one, starting at server `i % n`.
    RoundRobin,
}

/// The servers of one deployment and how clients spread over them. Cheap
/// to clone: every client holds one.
#[derive(Clone, Debug)]
pub struct Servers {
    addrs: Arc<[SocketAddr]>,
    spread: Spread,
    /// The HS256 secret of the deployment's `[[sites]]` entry `bench`
    /// (issuer `natter-bench`): with it, setup signs users in with site
    /// tokens instead of registering them, which costs no password hash.
    site_secret: Option<Arc<str>>,
}

impl Servers {
    /// Several nodes of one deployment; fails on an empty list, which no
    /// request could go to.
    pub fn new(addrs: Vec<SocketAddr>, spread: Spread) -> anyhow::Result<Servers> {
        anyhow::ensure!(!addrs.is_empty(), "give at least one --server");
        Ok(Servers {
            addrs: addrs.into(),
            spread,
            site_secret: None,
        })
    }

    /// One server: what every scenario drove before clusters.
    pub fn one(addr: SocketAddr) -> Servers {
        Servers {
            addrs: Arc::from([addr]),
            spread: Spread::Sticky,
            site_secret: None,
        }
    }

    /// Users of this deployment sign in as the `bench` site's, with
    /// tokens signed by `secret`.
    pub fn with_site_secret(mut self, secret: Option<String>) -> Servers {
        self.site_secret = secret.map(Arc::from);
        self
    }

    /// The `bench` site's secret, if users sign in through it.
    pub fn site_secret(&self) -> Option<&str> {
        self.site_secret.as_deref()
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// The first node: where scenarios that drive one server go.
    pub fn first(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every node, in the order given.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The node client `index` starts on (and, sticky, keeps to).
    pub fn home(&self, index: usize) -> usize {
        index % self.addrs.len()
    }

    /// How the clients spread, for the report's notes.
    pub fn describe(&self) -> String {
        let spread = match self.spread {
            Spread::Sticky => "client i on server i % n",
            Spread::RoundRobin => "each request to the next server",
        };
        format!("{} servers, {spread}", self.addrs.len())
    }
}

/// One simulated client's connections: one keep-alive connection per
/// node it uses, as a balancer keeps one to each backend, so moving from
/// node to node costs no new handshake per request.
pub struct Client {
    servers: Servers,
    source: IpAddr,
    conns: Vec<Option<Conn>>,
    /// The node of the next request.
    next: usize,
}

impl Client {
    /// Client `index` connecting from `source`; nothing is opened yet.
    pub fn new(servers: Servers, index: usize, source: IpAddr) -> Client {
        let next = servers.home(index);
        let conns = servers.addrs.iter().map(|_| None).collect();
        Client {
            servers,
            source,
            conns,
            next,
        }
    }

    /// Opens every connection this client will use, so that a run's
    /// first round of requests does not open them all at once.
    pub async fn connect(&mut self) -> anyhow::Result<()> {
        let nodes: Vec<usize> = match self.servers.spread {
            Spread::Sticky => vec![self.next],
            Spread::RoundRobin => (0..self.servers.len()).collect(),
        };
        for node in nodes {
            if self.conns[node].is_none() {
                self.conns[node] = Some(Conn::open(self.servers.addrs[node], self.source).await?);
            }
        }
        Ok(())
    }

    /// The connection for the next request and the node it goes to;
    /// round-robin moves on to the following node for the request after.
    pub async fn pick(&mut self) -> anyhow::Result<(usize, &mut Conn)> {
        let node = self.next;
        if self.servers.spread == Spread::RoundRobin {
            self.next = (node + 1) % self.servers.len();
        }
        let conn = match &mut self.conns[node] {
            Some(conn) => conn,
            slot => slot.insert(Conn::open(self.servers.addrs[node], self.source).await?),
        };
        Ok((node, conn))
    }

    /// Forgets the connection to `node` (it failed or the server closed
    /// it); the next request there opens a new one.
    pub fn forget(&mut self, node: usize) {
        self.conns[node] = None;
    }

    /// A new connection to `node` in place of the old one, for a request
    /// that must be tried again on the node it was meant for.
    pub async fn reopen(&mut self, node: usize) -> anyhow::Result<&mut Conn> {
        let conn = Conn::open(self.servers.addrs[node], self.source).await?;
        Ok(self.conns[node].insert(conn))
    }

    /// Drops every connection, as a client that goes away does; the next
    /// requests connect again from `source`.
    pub fn drop_all(&mut self, source: IpAddr) {
        self.source = source;
        self.conns.iter_mut().for_each(|c| *c = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], 9000 + p)))
            .collect()
    }

    #[test]
    fn clients_start_on_their_own_node_in_turn() {
        let servers = Servers::new(addrs(3), Spread::Sticky).unwrap();
        let homes: Vec<usize> = (0..7).map(|i| servers.home(i)).collect();
        assert_eq!(homes, [0, 1, 2, 0, 1, 2, 0]);
        assert!(Servers::new(Vec::new(), Spread::Sticky).is_err());
    }

    #[tokio::test]
    async fn sticky_keeps_to_one_node_and_round_robin_moves_on_each_request() {
        // Three listening sockets stand in for the nodes.
        let mut listeners = Vec::new();
        for _ in 0..3 {
            listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let nodes: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let source = IpAddr::from([127, 0, 0, 1]);

        let sticky = Servers::new(nodes.clone(), Spread::Sticky).unwrap();
        let mut client = Client::new(sticky, 4, source);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(client.pick().await.unwrap().0);
        }
        assert_eq!(seen, [1, 1, 1]);

        let round = Servers::new(nodes, Spread::RoundRobin).unwrap();
        let mut client = Client::new(round, 2, source);
        client.connect().await.unwrap();
        assert!(client.conns.iter().all(Option::is_some));
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(client.pick().await.unwrap().0);
        }
        assert_eq!(seen, [2, 0, 1, 2]);
        client.drop_all(source);
        assert!(client.conns.iter().all(Option::is_none));
    }
}
