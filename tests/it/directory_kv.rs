//! The customer directory in a NATS KV bucket: imported with the resolver's own import code,
//! served by a running resolver, and changes seen without a restart.

use async_nats::jetstream;
use frontline_resolver::config::DirectorySource;
use frontline_tests::nats::NatsServer;
use frontline_tests::stack::{
    connect, example_directory, ingress_config, resolver_config, spawn_ingress, spawn_resolver,
};
use frontline_tests::{WAIT, eventually, twilio};

#[tokio::test]
async fn a_running_resolver_sees_directory_changes() {
    let nats = NatsServer::start();
    let js = jetstream::new(connect(&nats.url()).await);
    let imported =
        frontline_resolver::directory::kv::import(&js, "customers", &example_directory())
            .await
            .unwrap();
    assert_eq!(imported, 4);

    let mut config = resolver_config(&nats.url());
    config.customer_directory = DirectorySource::NatsKv("customers".into());
    let resolver = spawn_resolver(config).await;
    let ingress = spawn_ingress(ingress_config(&nats.url())).await;
    resolver.wait_ready().await;
    ingress.wait_ready().await;

    let name = |address: &'static str| {
        let client = ingress.client.clone();
        async move {
            client.post(&twilio::conversation_add(address)).await.json()["friendly_name"]
                .as_str()
                .map(str::to_owned)
        }
    };
    assert_eq!(name("+14155550101").await.as_deref(), Some("Bobby Shaftoe"));
    assert_eq!(name("+19995550000").await.as_deref(), Some("+19995550000"));

    let store = js.get_key_value("customers").await.unwrap();
    let newcomer = r#"{"customer_id":"2001","display_name":"Newcomer","channels":[{"type":"sms","value":"+19995550000"}]}"#;
    store.put("2001", newcomer.into()).await.unwrap();
    eventually(WAIT, "the new customer to be served", || async {
        (name("+19995550000").await.as_deref() == Some("Newcomer")).then_some(())
    })
    .await;

    store.delete("1001").await.unwrap();
    eventually(WAIT, "the deleted customer to be gone", || async {
        (name("+14155550101").await.as_deref() == Some("+14155550101")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn import_refuses_ids_that_cannot_be_keys() {
    let nats = NatsServer::start();
    let js = jetstream::new(connect(&nats.url()).await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(
        &file,
        r#"[{"customer_id":"a b","display_name":"Spaces","channels":[]}]"#,
    )
    .unwrap();
    let err = frontline_resolver::directory::kv::import(&js, "customers", &file)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("a b"), "{err}");
}
