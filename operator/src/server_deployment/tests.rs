use super::*;

fn config(database: Database) -> ServerConfig {
    ServerConfig {
        image: "gatehouse-server:test".into(),
        replicas: 3,
        database,
        postgres_secret: (database == Database::Postgres).then(|| "pg".to_owned()),
        issuer: "https://auth.example.com".into(),
        signing_alg: "ES256".into(),
        key_rotation_period: "720h".into(),
    }
}

fn pod_spec(r: &Rendered) -> &PodSpec {
    r.deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

fn hash(r: &Rendered) -> String {
    r.deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()[CONFIG_HASH]
        .clone()
}

#[test]
fn sqlite_runs_one_replica_on_a_volume_with_the_recreate_strategy() {
    let r = render(&config(Database::Sqlite), "gatehouse-system");
    let spec = r.deployment.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.strategy.as_ref().unwrap().type_.as_deref(), Some("Recreate"));
    let pvc = r.data.as_ref().unwrap();
    assert_eq!(pvc.metadata.name.as_deref(), Some(DATA_PVC));
    let volumes = pod_spec(&r).volumes.as_ref().unwrap();
    assert!(volumes.iter().any(|v| {
        v.persistent_volume_claim
            .as_ref()
            .is_some_and(|p| p.claim_name == DATA_PVC)
    }));
    assert_eq!(
        r.config_map.data.as_ref().unwrap()["GATEHOUSE_DATABASE_URL"],
        "sqlite:///var/lib/gatehouse/gatehouse.db?mode=rwc"
    );
}

#[test]
fn postgres_runs_n_replicas_with_the_url_from_the_secret() {
    let r = render(&config(Database::Postgres), "gatehouse-system");
    assert_eq!(r.deployment.spec.as_ref().unwrap().replicas, Some(3));
    assert!(r.data.is_none());
    assert!(
        !r.config_map
            .data
            .as_ref()
            .unwrap()
            .contains_key("GATEHOUSE_DATABASE_URL")
    );
    let env = pod_spec(&r).containers[0].env.as_ref().unwrap();
    let url = env.iter().find(|e| e.name == "GATEHOUSE_DATABASE_URL").unwrap();
    let key_ref = url.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
    assert_eq!((key_ref.name.as_str(), key_ref.key.as_str()), ("pg", "url"));
}

#[test]
fn the_server_gets_its_ports_config_and_mounted_secrets() {
    let r = render(&config(Database::Sqlite), "ns");
    let container = &pod_spec(&r).containers[0];
    let ports: Vec<_> = container
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.name.clone().unwrap(), p.container_port))
        .collect();
    assert_eq!(ports, [("public".to_owned(), 8080), ("admin".to_owned(), 8081)]);
    assert_eq!(
        container.env_from.as_ref().unwrap()[0]
            .config_map_ref
            .as_ref()
            .unwrap()
            .name,
        SERVER_NAME
    );
    let data = r.config_map.data.as_ref().unwrap();
    assert_eq!(data["GATEHOUSE_LISTEN"], "0.0.0.0:8080");
    assert_eq!(data["GATEHOUSE_ADMIN_LISTEN"], "0.0.0.0:8081");
    assert_eq!(data["GATEHOUSE_ISSUER"], "https://auth.example.com");
    assert_eq!(
        data["GATEHOUSE_ADMIN_TOKEN_FILE"],
        "/etc/gatehouse/admin-token/token"
    );
    assert_eq!(
        data["GATEHOUSE_KEY_ENCRYPTION_KEY_FILE"],
        "/etc/gatehouse/kek/key"
    );
    let secrets: Vec<_> = pod_spec(&r)
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|v| v.secret.as_ref()?.secret_name.clone())
        .collect();
    assert_eq!(secrets, [ADMIN_TOKEN_SECRET, KEK_SECRET]);

    let svc_ports: Vec<_> = r
        .service
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.name.clone().unwrap(), p.port))
        .collect();
    assert_eq!(
        svc_ports,
        [("public".to_owned(), 8080), ("admin".to_owned(), 8081)]
    );
    assert_eq!(
        r.service.spec.as_ref().unwrap().selector,
        r.deployment.spec.as_ref().unwrap().selector.match_labels
    );
    assert_eq!(r.deployment.metadata.namespace.as_deref(), Some("ns"));
}

#[test]
fn a_config_change_changes_the_pod_template_hash_and_a_replica_change_does_not() {
    let base = config(Database::Postgres);
    let h = hash(&render(&base, "ns"));
    assert_eq!(h, hash(&render(&base, "ns")));
    assert_ne!(
        h,
        hash(&render(
            &ServerConfig {
                signing_alg: "EdDSA".into(),
                ..base.clone()
            },
            "ns"
        ))
    );
    assert_ne!(
        h,
        hash(&render(
            &ServerConfig {
                postgres_secret: Some("pg2".into()),
                ..base.clone()
            },
            "ns"
        ))
    );
    assert_eq!(
        h,
        hash(&render(
            &ServerConfig {
                replicas: 5,
                ..base.clone()
            },
            "ns"
        ))
    );
}
