//! The one connection a `RedisCache` and all its clones share: a single node's
//! self-healing multiplexed connection, or the async Cluster client.

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisResult, Value};

/// Both kinds are cheap handles onto one shared connection task, so a call clones the
/// handle (an `Arc` or a channel sender) instead of locking anything.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// One command, one round trip. On a cluster the client routes it by its keys.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        match self {
            Conn::Single(conn) => cmd.query_async(&mut conn.clone()).await,
            Conn::Cluster(conn) => cmd.query_async(&mut conn.clone()).await,
        }
    }

    /// Several commands written together, one round trip. On a cluster every command must
    /// address the same hash slot: the caller groups by slot first.
    pub(crate) async fn pipeline<T: FromRedisValue>(&self, pipeline: &Pipeline) -> RedisResult<T> {
        match self {
            Conn::Single(conn) => pipeline.query_async(&mut conn.clone()).await,
            Conn::Cluster(conn) => pipeline.query_async(&mut conn.clone()).await,
        }
    }

    /// One command sent to the node at `host:port` (cluster only; a single node answers
    /// everything itself).
    pub(crate) async fn query_node<T: FromRedisValue>(&self, cmd: &Cmd, node: &Node) -> RedisResult<T> {
        match self {
            Conn::Single(_) => self.query(cmd).await,
            Conn::Cluster(conn) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: node.host.clone(),
                    port: node.port,
                });
                let value = conn.clone().route_command(cmd.clone(), routing).await?;
                redis::from_redis_value(value).map_err(RedisError::from)
            }
        }
    }

    /// The nodes that hold data: the one node, or every cluster primary as `CLUSTER SLOTS`
    /// lists them now.
    pub(crate) async fn primaries(&self) -> RedisResult<Vec<Node>> {
        match self {
            Conn::Single(_) => Ok(vec![Node { host: String::new(), port: 0 }]),
            Conn::Cluster(_) => {
                let slots: Value = self.query(redis::cmd("CLUSTER").arg("SLOTS")).await?;
                Ok(primaries_of(&slots))
            }
        }
    }
}

/// A cluster node's address as the cluster announces it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Node {
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// The primaries in a `CLUSTER SLOTS` reply: each entry is `[start, end, [host, port, id],
/// replicas...]`; a primary serving several ranges is listed once.
fn primaries_of(slots: &Value) -> Vec<Node> {
    let mut nodes = Vec::new();
    let Value::Array(ranges) = slots else { return nodes };
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        let Some(Value::Array(primary)) = parts.get(2) else { continue };
        let host = match primary.first() {
            Some(Value::BulkString(host)) => String::from_utf8_lossy(host).into_owned(),
            Some(Value::SimpleString(host)) => host.clone(),
            _ => continue,
        };
        let Some(Value::Int(port)) = primary.get(1) else { continue };
        let Ok(port) = u16::try_from(*port) else { continue };
        let node = Node { host, port };
        if !nodes.contains(&node) {
            nodes.push(node);
        }
    }
    nodes
}

/// The positions of `keys` grouped by hash slot, in order of first appearance: each group
/// can go to its node as one request. Repeated keys stay in their group each time.
pub(crate) fn by_slot<K: AsRef<[u8]>>(keys: &[K]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index_of: HashMap<Slot, usize> = HashMap::new();
    for (position, key) in keys.iter().enumerate() {
        let slot = Slot::for_key(key.as_ref());
        let group = *index_of.entry(slot).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(position);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_every_position_once() {
        let keys: Vec<String> = (0..200).map(|i| format!("key-{i}")).chain(["key-1".to_owned()]).collect();
        let groups = by_slot(&keys);
        let mut seen: Vec<usize> = groups.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..keys.len()).collect::<Vec<_>>());
        for group in &groups {
            let slot = Slot::for_key(keys[group[0]].as_bytes());
            assert!(group.iter().all(|&i| Slot::for_key(keys[i].as_bytes()) == slot));
        }
        assert!(groups.len() > 50, "200 keys should spread over many slots");
    }

    #[test]
    fn cluster_slots_reply_lists_each_primary_once() {
        let node = |port: i64| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![Value::Int(0), Value::Int(5460), node(7000), node(7003)]),
            Value::Array(vec![Value::Int(5461), Value::Int(10922), node(7001)]),
            Value::Array(vec![Value::Int(10923), Value::Int(16383), node(7000)]),
        ]);
        let ports: Vec<u16> = primaries_of(&reply).into_iter().map(|node| node.port).collect();
        assert_eq!(ports, [7000, 7001]);
    }
}
