//! The cluster's network, in one process: an RPC is a direct call of the target node's
//! `Raft` (no serialization, no sockets), so a three-node run measures what the
//! protocol and the followers' log stores cost, not a transport.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::{Bench, Raft};

/// Every node of one cluster, by id.
#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<Mutex<BTreeMap<u64, Raft>>>,
}

impl Router {
    /// Makes node `id` reachable.
    pub fn add(&self, id: u64, raft: Raft) {
        self.nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, raft);
    }
}

impl RaftNetworkFactory<Bench> for Router {
    type Network = Conn;

    async fn new_client(&mut self, target: u64, _: &BasicNode) -> Conn {
        Conn {
            router: self.clone(),
            target,
        }
    }
}

/// A connection to one node.
pub struct Conn {
    router: Router,
    target: u64,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl Conn {
    fn target<E: std::error::Error>(&self) -> Result<Raft, RPCError<u64, BasicNode, E>> {
        let nodes = self
            .router
            .nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match nodes.get(&self.target) {
            Some(raft) => Ok(raft.clone()),
            None => Err(RPCError::Unreachable(Unreachable::new(&io::Error::other(
                format!("no node {}", self.target),
            )))),
        }
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<u64, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl RaftNetwork<Bench> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Bench>,
        _: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        let raft = self.target()?;
        raft.append_entries(rpc).await.map_err(|e| self.remote(e))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Bench>,
        _: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let raft = self.target()?;
        raft.install_snapshot(rpc).await.map_err(|e| self.remote(e))
    }

    async fn vote(&mut self, rpc: VoteRequest<u64>, _: RPCOption) -> RpcResult<VoteResponse<u64>> {
        let raft = self.target()?;
        raft.vote(rpc).await.map_err(|e| self.remote(e))
    }
}
