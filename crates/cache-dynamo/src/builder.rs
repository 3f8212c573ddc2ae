//! `DynamoCacheBuilder`: settings, validation, the SDK client and the table check.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableDescription, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use cache_core::{ErrorKind, Result};

use crate::cache::{DynamoCache, Inner, Names};
use crate::error::{Target, error, sdk};
use crate::keys::PREFIX_MAX;

/// How long a TCP (and TLS) connection may take to open. A regional endpoint answers
/// in milliseconds; 2 s still covers one lost SYN (retransmitted after 1 s) and fails
/// fast enough when the endpoint is black-holed.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one attempt of one request may take. DynamoDB answers single-item calls
/// in single-digit milliseconds and batch calls in tens; 3 s leaves room for a slow
/// moment without holding a caller's request for long.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one request may take in all, retries included: two full attempts and the
/// SDK's backoff, so a cache call never holds its caller much longer than this.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(7);

/// Attempts per request, the first included (the SDK's standard retry mode, with
/// exponential backoff). Three is the SDK's own default: enough to ride out one
/// throttled or dropped request, bounded so a failing table is reported quickly.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// How long `get_many`, `set_many`, `delete_many` and `clear` keep retrying the items
/// DynamoDB returns as unprocessed (throttling) before giving up with `Unavailable`.
pub const DEFAULT_BATCH_DEADLINE: Duration = Duration::from_secs(10);

/// How long `build` waits for a table it created to become ACTIVE.
const TABLE_ACTIVE_WAIT: Duration = Duration::from_secs(60);

/// Whether DynamoDB itself deletes expired items of this table.
///
/// Reads filter expired items whatever this says (DynamoDB's own sweep can lag by
/// days); it tells whether expired items also stop taking space, so an operator can
/// see a table that grows without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerTtl {
    /// TTL is enabled on this cache's expiry attribute.
    Enabled,
    /// TTL is off, or enabled on another attribute: expired items stay in the table
    /// until overwritten, deleted or cleared.
    NotEnabled,
    /// The server did not say (some emulators do not implement TTL).
    Unknown,
}

/// Settings for a [`DynamoCache`]; [`build`](DynamoCacheBuilder::build) checks them and
/// the table.
#[derive(Clone)]
pub struct DynamoCacheBuilder {
    table: String,
    namespace: String,
    region: Option<String>,
    endpoint: Option<String>,
    credentials: Option<(String, String, Option<String>)>,
    names: Names,
    prefix: String,
    default_ttl: Option<Duration>,
    consistent_reads: bool,
    create_table_if_missing: bool,
    connect_timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    operation_timeout: Option<Duration>,
    max_attempts: Option<u32>,
    batch_deadline: Duration,
    max_value_len: Option<usize>,
    client: Option<Client>,
}

// Hand-written so the secret key and session token never reach a log.
impl fmt::Debug for DynamoCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoCacheBuilder")
            .field("table", &self.table)
            .field("namespace", &self.namespace)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials.as_ref().map(|(id, ..)| format!("{id} (secret hidden)")))
            .field("names", &self.names)
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.default_ttl)
            .field("consistent_reads", &self.consistent_reads)
            .field("create_table_if_missing", &self.create_table_if_missing)
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("batch_deadline", &self.batch_deadline)
            .field("max_value_len", &self.max_value_len)
            .field("client", &self.client.as_ref().map(|_| "given"))
            .finish()
    }
}

impl DynamoCacheBuilder {
    pub(crate) fn new(table: impl Into<String>) -> Self {
        DynamoCacheBuilder {
            table: table.into(),
            namespace: String::new(),
            region: None,
            endpoint: None,
            credentials: None,
            names: Names::default(),
            prefix: String::new(),
            default_ttl: None,
            consistent_reads: true,
            create_table_if_missing: false,
            connect_timeout: None,
            attempt_timeout: None,
            operation_timeout: None,
            max_attempts: None,
            batch_deadline: DEFAULT_BATCH_DEADLINE,
            max_value_len: None,
            client: None,
        }
    }

    /// Settings from the environment: `CACHE_DYNAMO_TABLE` (required),
    /// `CACHE_DYNAMO_NAMESPACE`, `CACHE_DYNAMO_PREFIX`, `CACHE_DYNAMO_REGION`,
    /// `CACHE_DYNAMO_ENDPOINT`, `CACHE_DYNAMO_DEFAULT_TTL_SECS` and
    /// `CACHE_DYNAMO_CREATE_TABLE` (`1`/`true`). Credentials, and the region and endpoint
    /// when not given here, come from the standard AWS chain (`AWS_ACCESS_KEY_ID`,
    /// `AWS_REGION`, `AWS_ENDPOINT_URL_DYNAMODB`, profiles, instance roles, ...).
    ///
    /// # Errors
    /// `InvalidConfig` naming the variable that is missing or unreadable.
    pub fn from_env() -> Result<Self> {
        fn var(name: &'static str) -> Result<Option<String>> {
            match std::env::var(name) {
                Ok(value) if value.is_empty() => Ok(None),
                Ok(value) => Ok(Some(value)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(error(ErrorKind::InvalidConfig, "from_env", None, format!("{name} is not UTF-8")))
                }
            }
        }
        let table = var("CACHE_DYNAMO_TABLE")?.ok_or_else(|| {
            error(ErrorKind::InvalidConfig, "from_env", None, "CACHE_DYNAMO_TABLE is not set (the table name)")
        })?;
        let mut builder = DynamoCacheBuilder::new(table);
        if let Some(namespace) = var("CACHE_DYNAMO_NAMESPACE")? {
            builder = builder.namespace(namespace);
        }
        if let Some(prefix) = var("CACHE_DYNAMO_PREFIX")? {
            builder = builder.prefix(prefix);
        }
        if let Some(region) = var("CACHE_DYNAMO_REGION")? {
            builder = builder.region(region);
        }
        if let Some(endpoint) = var("CACHE_DYNAMO_ENDPOINT")? {
            builder = builder.endpoint_url(endpoint);
        }
        if let Some(secs) = var("CACHE_DYNAMO_DEFAULT_TTL_SECS")? {
            let secs: u64 = secs.parse().map_err(|_| {
                error(
                    ErrorKind::InvalidConfig,
                    "from_env",
                    None,
                    format!("CACHE_DYNAMO_DEFAULT_TTL_SECS is not a number of seconds: {secs:?}"),
                )
            })?;
            builder = builder.default_ttl(Duration::from_secs(secs));
        }
        if let Some(create) = var("CACHE_DYNAMO_CREATE_TABLE")? {
            let create = match create.as_str() {
                "1" | "true" => true,
                "0" | "false" => false,
                other => {
                    return Err(error(
                        ErrorKind::InvalidConfig,
                        "from_env",
                        None,
                        format!("CACHE_DYNAMO_CREATE_TABLE must be 1, true, 0 or false, not {other:?}"),
                    ));
                }
            };
            builder = builder.create_table_if_missing(create);
        }
        Ok(builder)
    }

    /// Prepended to the table name, so several environments (`dev-`, `prod-`) can share
    /// one account: the table used is `namespace + table`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The AWS region, such as `us-east-1`. Default: the standard chain (`AWS_REGION`,
    /// the profile).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Another endpoint than AWS's: DynamoDB Local or an emulator
    /// (`http://127.0.0.1:8000`).
    pub fn endpoint_url(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Explicit credentials instead of the standard chain. The secret is never shown by
    /// `Debug` or in errors.
    pub fn credentials(mut self, access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        self.credentials = Some((access_key_id.into(), secret_access_key.into(), None));
        self
    }

    /// Explicit temporary credentials (with a session token).
    pub fn session_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: impl Into<String>,
    ) -> Self {
        self.credentials = Some((access_key_id.into(), secret_access_key.into(), Some(session_token.into())));
        self
    }

    /// The partition key attribute (a string). Default `cache_key`.
    pub fn key_attribute(mut self, name: impl Into<String>) -> Self {
        self.names.key = name.into();
        self
    }

    /// The value attribute (binary; a number for counters). Default `value`.
    pub fn value_attribute(mut self, name: impl Into<String>) -> Self {
        self.names.value = name.into();
        self
    }

    /// The expiry attribute (a number of epoch seconds, DynamoDB's TTL format).
    /// Default `expires_at`.
    pub fn expiry_attribute(mut self, name: impl Into<String>) -> Self {
        self.names.expiry = name.into();
        self
    }

    /// Every key of this cache is stored as `prefix + key`, and `clear` removes exactly
    /// the items whose key starts with it. Default: none. At most 1000 bytes.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The lifetime of entries written with `Ttl::Default` (and of counters `incr`
    /// creates). Default: never expire.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Whether reads are strongly consistent (default `true`, so a `get` sees the `set`
    /// before it; eventually consistent reads cost half but may miss recent writes).
    pub fn consistent_reads(mut self, consistent: bool) -> Self {
        self.consistent_reads = consistent;
        self
    }

    /// Whether `build` creates a missing table (on-demand billing, a string partition key,
    /// TTL enabled on the expiry attribute) and waits until it is ACTIVE. Default `false`:
    /// a missing table is then an `InvalidConfig` error.
    pub fn create_table_if_missing(mut self, create: bool) -> Self {
        self.create_table_if_missing = create;
        self
    }

    /// How long opening a connection may take. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long one attempt of a request may take. Default [`DEFAULT_ATTEMPT_TIMEOUT`].
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// How long one request may take, retries included. Default
    /// [`DEFAULT_OPERATION_TIMEOUT`].
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = Some(timeout);
        self
    }

    /// Attempts per request, the first included (at least 1). Default
    /// [`DEFAULT_MAX_ATTEMPTS`].
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// How long bulk operations retry unprocessed items. Default
    /// [`DEFAULT_BATCH_DEADLINE`].
    pub fn batch_deadline(mut self, deadline: Duration) -> Self {
        self.batch_deadline = deadline;
        self
    }

    /// Lowers the largest value accepted, in bytes. The default, and the most allowed, is
    /// DynamoDB's 400 KB item less the longest stored key and the attribute names
    /// (about 408 KB; see [`DynamoCache::capabilities`](cache_core::Cache::capabilities)).
    /// Emulators may allow less: moto caps items at 405,000 bytes, so about 403,000 bytes
    /// of value fit there.
    pub fn max_value_len(mut self, len: usize) -> Self {
        self.max_value_len = Some(len);
        self
    }

    /// Uses this SDK client as it is, with its own region, endpoint, credentials,
    /// timeouts and retries; setting any of those here as well is an `InvalidConfig`
    /// error rather than a silent choice between the two.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Checks the settings, makes the SDK client, checks (or creates) the table.
    ///
    /// Costs one `DescribeTable` and one `DescribeTimeToLive` request; creating a table
    /// adds `CreateTable`, a `DescribeTable` every half second until it is ACTIVE, and
    /// `UpdateTimeToLive`.
    ///
    /// # Errors
    /// `InvalidConfig` naming the setting: a table name DynamoDB would refuse, a prefix
    /// over 1000 bytes, empty or clashing attribute names, no region, a missing table
    /// (without `create_table_if_missing`), a table whose key is not a string partition
    /// key named like `key_attribute`, credentials the server refuses. `Unavailable` or
    /// `Timeout` when the endpoint cannot be reached.
    pub async fn build(self) -> Result<DynamoCache> {
        let table = format!("{}{}", self.namespace, self.table);
        self.validate(&table)?;
        let client = match &self.client {
            Some(client) => client.clone(),
            None => self.make_client().await?,
        };
        let config = client.config();
        let target = Target {
            table: table.clone(),
            region: config.region().map_or_else(|| "(none)".to_owned(), ToString::to_string),
            endpoint: self.endpoint.clone(),
        };
        if config.region().is_none() {
            return Err(error(
                ErrorKind::InvalidConfig,
                "build",
                None,
                "no AWS region: call .region() or set AWS_REGION or a profile region",
            ));
        }
        let description = match client.describe_table().table_name(&table).send().await {
            Ok(output) => output.table,
            Err(failure) => {
                let not_found = failure.as_service_error().is_some_and(|e| e.is_resource_not_found_exception());
                if not_found && self.create_table_if_missing {
                    Some(create_table(&client, &target, &self.names.key).await?)
                } else {
                    return Err(sdk(&target, "build", None, failure));
                }
            }
        };
        check_key_schema(description.as_ref(), &target, &self.names.key)?;
        let server_ttl = server_ttl(&client, &target, &self.names.expiry, self.create_table_if_missing).await;
        let inner = Inner {
            client,
            target,
            names: self.names,
            consistent_reads: self.consistent_reads,
            batch_deadline: self.batch_deadline,
            server_ttl,
        };
        Ok(DynamoCache::new(Arc::new(inner), self.prefix, self.default_ttl, self.max_value_len))
    }

    fn validate(&self, table: &str) -> Result<()> {
        let invalid = |what: String| Err(error(ErrorKind::InvalidConfig, "build", None, what));
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if !(3..=255).contains(&table.len()) || !table.chars().all(allowed) {
            return invalid(format!(
                "table name {table:?} (namespace + table): DynamoDB needs 3 to 255 of a-z, A-Z, 0-9, _, -, ."
            ));
        }
        if self.prefix.len() > PREFIX_MAX {
            return invalid(format!("prefix of {} bytes: at most {PREFIX_MAX}", self.prefix.len()));
        }
        let Names { key, value, expiry } = &self.names;
        if key.is_empty() || value.is_empty() || expiry.is_empty() {
            return invalid("attribute names must not be empty".to_owned());
        }
        if key == value || key == expiry || value == expiry {
            return invalid(format!("attribute names must differ: key {key:?}, value {value:?}, expiry {expiry:?}"));
        }
        if [key, value, expiry].iter().any(|name| name.len() > 255) {
            return invalid("attribute names must be at most 255 bytes".to_owned());
        }
        let most = crate::cache::max_value_len(&self.names);
        if let Some(asked) = self.max_value_len.filter(|&asked| asked > most) {
            return invalid(format!("max_value_len {asked} is over what one DynamoDB item holds here ({most})"));
        }
        if self.client.is_some() {
            let given = [
                ("region", self.region.is_some()),
                ("endpoint_url", self.endpoint.is_some()),
                ("credentials", self.credentials.is_some()),
                ("connect_timeout", self.connect_timeout.is_some()),
                ("attempt_timeout", self.attempt_timeout.is_some()),
                ("operation_timeout", self.operation_timeout.is_some()),
                ("max_attempts", self.max_attempts.is_some()),
            ];
            if let Some((setting, _)) = given.iter().find(|(_, set)| *set) {
                return invalid(format!("{setting} was set together with a client; configure the client instead"));
            }
        }
        if self.max_attempts == Some(0) {
            return invalid("max_attempts must be at least 1".to_owned());
        }
        Ok(())
    }

    async fn make_client(&self) -> Result<Client> {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
            .operation_attempt_timeout(self.attempt_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT))
            .operation_timeout(self.operation_timeout.unwrap_or(DEFAULT_OPERATION_TIMEOUT))
            .build();
        let retries = RetryConfig::standard().with_max_attempts(self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS));
        // A fixed behaviour version: SDK defaults do not change under us with an update.
        let mut loader =
            aws_config::defaults(BehaviorVersion::v2025_08_07()).timeout_config(timeouts).retry_config(retries);
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some((id, secret, token)) = &self.credentials {
            loader = loader.credentials_provider(Credentials::new(id, secret, token.clone(), None, "cache-dynamo"));
        }
        Ok(Client::new(&loader.load().await))
    }
}

async fn create_table(client: &Client, target: &Target, key: &str) -> Result<TableDescription> {
    let invalid = |what: &str| error(ErrorKind::InvalidConfig, "build", None, format!("{what} for a new table"));
    let schema = KeySchemaElement::builder()
        .attribute_name(key)
        .key_type(KeyType::Hash)
        .build()
        .map_err(|e| invalid("key schema").with_source(e))?;
    let definition = AttributeDefinition::builder()
        .attribute_name(key)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| invalid("attribute definition").with_source(e))?;
    let created = client
        .create_table()
        .table_name(&target.table)
        .key_schema(schema)
        .attribute_definitions(definition)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    if let Err(failure) = created {
        // Another process creating the same table at the same moment is fine.
        if !failure.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) {
            return Err(sdk(target, "build", None, failure));
        }
    }
    let deadline = Instant::now() + TABLE_ACTIVE_WAIT;
    loop {
        let described = client.describe_table().table_name(&target.table).send().await;
        let description = described.map_err(|failure| sdk(target, "build", None, failure))?.table;
        if let Some(description) = description.filter(|t| t.table_status() == Some(&TableStatus::Active)) {
            return Ok(description);
        }
        if Instant::now() >= deadline {
            return Err(error(
                ErrorKind::Timeout,
                "build",
                None,
                format!("table `{}` not ACTIVE after {TABLE_ACTIVE_WAIT:?}", target.table),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn check_key_schema(description: Option<&TableDescription>, target: &Target, key: &str) -> Result<()> {
    let schema = description.map(TableDescription::key_schema).unwrap_or_default();
    let hash_key = schema.iter().find(|element| element.key_type() == &KeyType::Hash);
    let string_key = description
        .map(TableDescription::attribute_definitions)
        .unwrap_or_default()
        .iter()
        .any(|d| d.attribute_name() == key && d.attribute_type() == &ScalarAttributeType::S);
    let fits = schema.len() == 1 && hash_key.is_some_and(|element| element.attribute_name() == key) && string_key;
    if fits {
        return Ok(());
    }
    let found: Vec<String> =
        schema.iter().map(|element| format!("{} ({})", element.attribute_name(), element.key_type())).collect();
    Err(error(
        ErrorKind::InvalidConfig,
        "build",
        None,
        format!(
            "table `{}` has key [{}]; this cache needs a string partition key `{key}` and no sort key \
             (set key_attribute to match)",
            target.table,
            found.join(", ")
        ),
    ))
}

/// Reads (and, when allowed to create, turns on) TTL on the expiry attribute. Never
/// fails the build: reads filter expired items themselves, so a server without TTL
/// (some emulators) still gives a correct cache; the answer is kept for
/// [`DynamoCache::server_ttl`].
async fn server_ttl(client: &Client, target: &Target, expiry: &str, may_enable: bool) -> ServerTtl {
    let described = client.describe_time_to_live().table_name(&target.table).send().await;
    let Ok(output) = described else { return ServerTtl::Unknown };
    let description = output.time_to_live_description();
    let on_this_attribute = description.and_then(|d| d.attribute_name()) == Some(expiry);
    let status = description.and_then(|d| d.time_to_live_status());
    if on_this_attribute && matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)) {
        return ServerTtl::Enabled;
    }
    // Enabling on a table whose TTL is on another attribute would fail; leave it as is.
    let elsewhere = matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
    if !may_enable || elsewhere {
        return ServerTtl::NotEnabled;
    }
    let Ok(specification) = TimeToLiveSpecification::builder().attribute_name(expiry).enabled(true).build() else {
        return ServerTtl::Unknown;
    };
    match client.update_time_to_live().table_name(&target.table).time_to_live_specification(specification).send().await
    {
        Ok(_) => ServerTtl::Enabled,
        Err(_) => ServerTtl::Unknown,
    }
}
