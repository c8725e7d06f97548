//! The nodes' transport: openraft's three RPCs and the key-value API as
//! length-prefixed JSON frames over TCP (a 4-byte big-endian length, then the JSON
//! body), one request and its reply at a time per connection.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::error::{
    CheckIsLeaderError, ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError,
    RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, LogId, RPCTypes, RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use strata_raft::StateReader;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::node::{Kv, NodeId, Raft, Result, Set};

/// The largest frame read: its length comes off the wire, and a damaged length must not
/// make the reader allocate gigabytes.
const MAX_FRAME: usize = 64 << 20;

/// How long the client waits for one node's answer before trying another.
const CLIENT_ATTEMPT: Duration = Duration::from_secs(5);

/// Every message a node answers.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// openraft: replicate entries (or a heartbeat).
    AppendEntries(AppendEntriesRequest<Kv>),
    /// openraft: one chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<Kv>),
    /// openraft: a candidate asks for this node's vote.
    Vote(VoteRequest<NodeId>),
    /// Client: set a key (leader only).
    Set(Set),
    /// Client: a linearizable read of a key (leader only).
    Get(String),
}

/// The reply to each [`Request`], same variant.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// To [`Request::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Request::InstallSnapshot`].
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// To [`Request::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Request::Set`]: the log id the write was committed at.
    Set(Result<LogId<NodeId>, ApiError>),
    /// To [`Request::Get`]: the value, if the key is set.
    Get(Result<Option<String>, ApiError>),
}

/// Why a client request was not served.
#[derive(Debug, Serialize, Deserialize)]
pub enum ApiError {
    /// This node is not the leader; the leader it knows of, if any.
    NotLeader(Option<NodeId>),
    /// Anything else (the node is shutting down, a storage error).
    Failed(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::NotLeader(Some(leader)) => write!(f, "not the leader (node {leader} is)"),
            ApiError::NotLeader(None) => write!(f, "not the leader (no leader known)"),
            ApiError::Failed(e) => write!(f, "{e}"),
        }
    }
}

async fn write_frame<T: Serialize>(stream: &mut TcpStream, message: &T) -> io::Result<()> {
    let body = serde_json::to_vec(message)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&len| len as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    // Length and body in one write: one segment on the wire for a small message.
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await
}

/// The next frame, or `None` if the peer closed the connection between frames.
async fn read_frame<T: DeserializeOwned>(stream: &mut TcpStream) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes"),
        ));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    Ok(Some(serde_json::from_slice(&body)?))
}

async fn connect(addr: &str) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    // Small request/reply frames: Nagle's algorithm would hold each back for an ACK.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One request and its reply on `conn` (connecting if it holds no connection). The
/// connection is put back only after a whole round trip: one cut short (an error, or a
/// timeout dropping this future) may be mid-frame, so it is dropped.
async fn round_trip(
    conn: &mut Option<TcpStream>,
    addr: &str,
    request: &Request,
) -> io::Result<Reply> {
    let mut stream = match conn.take() {
        Some(stream) => stream,
        None => connect(addr).await?,
    };
    write_frame(&mut stream, request).await?;
    let reply = read_frame(&mut stream).await?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the node closed the connection",
        )
    })?;
    *conn = Some(stream);
    Ok(reply)
}

/// What a node's server serves: its running Raft and state machine, or nothing while
/// the node is down.
pub type Slot = Arc<Mutex<Option<Serving>>>;

/// A running node, as its server sees it.
#[derive(Clone)]
pub struct Serving {
    /// The node's Raft.
    pub raft: Raft,
    /// Its state machine's keys.
    pub reader: StateReader,
}

/// Accepts connections on `listener` and serves each until it closes; runs until
/// aborted (which drops every connection it accepted).
pub async fn serve(listener: TcpListener, slot: Slot) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, Arc::clone(&slot)));
                }
                // Out of file descriptors, say: wait rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reaps finished connections, so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(mut stream: TcpStream, slot: Slot) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    while let Ok(Some(request)) = read_frame::<Request>(&mut stream).await {
        let serving = slot.lock().unwrap_or_else(PoisonError::into_inner).clone();
        // A node that is down answers nothing: its peers see the connection close, as
        // they would if its process had stopped, and back off.
        let Some(node) = serving else { return };
        let reply = handle(&node, request).await;
        if write_frame(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}

async fn handle(node: &Serving, request: Request) -> Reply {
    match request {
        Request::AppendEntries(rpc) => Reply::AppendEntries(node.raft.append_entries(rpc).await),
        Request::InstallSnapshot(rpc) => {
            Reply::InstallSnapshot(node.raft.install_snapshot(rpc).await)
        }
        Request::Vote(rpc) => Reply::Vote(node.raft.vote(rpc).await),
        Request::Set(set) => Reply::Set(match node.raft.client_write(set).await {
            Ok(written) => Ok(written.log_id),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to))) => {
                Err(ApiError::NotLeader(to.leader_id))
            }
            Err(e) => Err(ApiError::Failed(e.to_string())),
        }),
        Request::Get(key) => Reply::Get(get(node, &key).await),
    }
}

/// A linearizable read: openraft confirms this node is still the leader (a heartbeat
/// round with a quorum) and waits until it has applied every write committed before
/// the read began; then the state machine answers.
async fn get(node: &Serving, key: &str) -> Result<Option<String>, ApiError> {
    match node.raft.ensure_linearizable().await {
        Ok(_) => {}
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(to))) => {
            return Err(ApiError::NotLeader(to.leader_id));
        }
        Err(e) => return Err(ApiError::Failed(e.to_string())),
    }
    match node.reader.get(key) {
        Ok(value) => Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned())),
        Err(e) => Err(ApiError::Failed(e.to_string())),
    }
}

/// openraft's network factory: a [`Peer`] per target node.
pub struct Network {
    /// The node this network belongs to (named in timeout errors).
    pub id: NodeId,
}

impl RaftNetworkFactory<Kv> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            from: self.id,
            target,
            node: node.clone(),
            conn: None,
        }
    }
}

/// openraft's connection to one peer: one TCP connection, reopened after any failure.
pub struct Peer {
    from: NodeId,
    target: NodeId,
    node: BasicNode,
    conn: Option<TcpStream>,
}

impl Peer {
    async fn call<E: std::error::Error>(
        &mut self,
        request: Request,
        action: RPCTypes,
        option: &RPCOption,
    ) -> Result<Reply, RPCError<NodeId, BasicNode, E>> {
        let ttl = option.hard_ttl();
        match tokio::time::timeout(ttl, round_trip(&mut self.conn, &self.node.addr, &request)).await
        {
            Ok(Ok(reply)) => Ok(reply),
            // Refused, reset or closed: openraft backs off (see `backoff`) and retries.
            Ok(Err(e)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(_) => Err(RPCError::Timeout(Timeout {
                action,
                id: self.from,
                target: self.target,
                timeout: ttl,
            })),
        }
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new_with_node(
            self.target,
            self.node.clone(),
            e,
        ))
    }

    fn mismatch<E: std::error::Error>(reply: &Reply) -> RPCError<NodeId, BasicNode, E> {
        let e = io::Error::other(format!("a reply of the wrong kind: {reply:?}"));
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<Kv> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Kv>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let reply = self
            .call(
                Request::AppendEntries(rpc),
                RPCTypes::AppendEntries,
                &option,
            )
            .await?;
        match reply {
            Reply::AppendEntries(result) => result.map_err(|e| self.remote(e)),
            other => Err(Self::mismatch(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Kv>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let reply = self
            .call(
                Request::InstallSnapshot(rpc),
                RPCTypes::InstallSnapshot,
                &option,
            )
            .await?;
        match reply {
            Reply::InstallSnapshot(result) => result.map_err(|e| self.remote(e)),
            other => Err(Self::mismatch(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let reply = self
            .call(Request::Vote(rpc), RPCTypes::Vote, &option)
            .await?;
        match reply {
            Reply::Vote(result) => result.map_err(|e| self.remote(e)),
            other => Err(Self::mismatch(&other)),
        }
    }

    /// A down peer is retried every 200 ms (openraft's default is 500 ms): a restarted
    /// node is found sooner.
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}

/// A client of the cluster's key-value API. It knows every node's address, sends each
/// request to the node it believes leads, follows "not the leader" hints, and tries
/// the other nodes while there is no leader (an election), up to a deadline.
pub struct Client {
    nodes: BTreeMap<NodeId, SocketAddr>,
    conns: BTreeMap<NodeId, Option<TcpStream>>,
    leader: NodeId,
    deadline: Duration,
}

impl Client {
    /// A client of the nodes at `nodes`, giving up on a request after `deadline`.
    pub fn new(nodes: BTreeMap<NodeId, SocketAddr>, deadline: Duration) -> Self {
        let leader = nodes.keys().next().copied().unwrap_or_default();
        Client {
            nodes,
            conns: BTreeMap::new(),
            leader,
            deadline,
        }
    }

    /// Sets `key` to `value`; returns once the write is committed (replicated to a
    /// majority and applied by the leader), with its log id.
    ///
    /// A write whose answer is lost (the leader fails meanwhile) is sent again: setting
    /// a key to a value twice leaves the same state as once.
    pub async fn set(&mut self, key: &str, value: &str) -> Result<LogId<NodeId>> {
        let set = Set {
            key: key.to_owned(),
            value: value.to_owned(),
        };
        self.request(Request::Set(set), |reply| match reply {
            Reply::Set(result) => Some(result),
            _ => None,
        })
        .await
    }

    /// The value of `key`, read linearizably through the leader.
    pub async fn get(&mut self, key: &str) -> Result<Option<String>> {
        self.request(Request::Get(key.to_owned()), |reply| match reply {
            Reply::Get(result) => Some(result),
            _ => None,
        })
        .await
    }

    async fn request<T>(
        &mut self,
        request: Request,
        pick: fn(Reply) -> Option<Result<T, ApiError>>,
    ) -> Result<T> {
        let deadline = Instant::now() + self.deadline;
        let mut last_error = String::from("no node tried");
        while Instant::now() < deadline {
            let target = self.leader;
            let addr = self
                .nodes
                .get(&target)
                .ok_or_else(|| format!("node {target} is not in the address book"))?
                .to_string();
            let conn = self.conns.entry(target).or_default();
            let attempt =
                tokio::time::timeout(CLIENT_ATTEMPT, round_trip(conn, &addr, &request)).await;
            match attempt {
                Ok(Ok(reply)) => match pick(reply) {
                    Some(Ok(value)) => return Ok(value),
                    Some(Err(ApiError::NotLeader(Some(leader))))
                        if leader != target && self.nodes.contains_key(&leader) =>
                    {
                        self.leader = leader;
                        // A short pause even so: two nodes with stale views could
                        // otherwise send the request back and forth as fast as they
                        // answer until the election settles.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    Some(Err(e)) => last_error = format!("node {target}: {e}"),
                    None => last_error = format!("node {target}: a reply of the wrong kind"),
                },
                Ok(Err(e)) => last_error = format!("node {target}: {e}"),
                Err(_) => last_error = format!("node {target}: no answer in {CLIENT_ATTEMPT:?}"),
            }
            // No leader known here (an election under way, or the node is down): try
            // the next node after a pause.
            self.leader = self
                .nodes
                .range(target + 1..)
                .chain(self.nodes.range(..=target))
                .map(|(&id, _)| id)
                .next()
                .unwrap_or(target);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "no leader served the request in {:?}: {last_error}",
            self.deadline
        )
        .into())
    }
}
