//! The Python `appoptics-metrics` 5.1.0 unit suite, ported: one module per Python test
//! file, one test per Python test (named after it), run against the AppOptics emulator
//! instead of the library's in-memory fake. `PORTED.md` maps every Python case to its test
//! here and gives the reason for each case that is not ported.
//!
//! Where the Python fake differed from the documented server (tags are lower-cased, points
//! are floored to the resolution, no legacy `source`), the assertion follows the server and
//! the table marks the case "adapted".

use std::time::Duration;

use appoptics_client::model::{Measurements, Tags, tags};
use appoptics_client::{AppOpticsClient, Measurement, MeasurementsQuery};
use metrics_core::{BackoffConfig, ClientOptions, RetryConfig};
use metrics_emulators::appoptics::AppOpticsEmulator;

fn fast_retry() -> RetryConfig {
    RetryConfig::default().with_backoff(BackoffConfig {
        init_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        base: 2.0,
    })
}

fn connect(emulator: &AppOpticsEmulator, conn_tags: &[(&str, &str)]) -> AppOpticsClient {
    AppOpticsClient::builder()
        .with_token("key_test")
        .with_base_url(emulator.api_url())
        .with_tags(tags(conn_tags.iter().copied()))
        .with_retry(fast_retry())
        .build()
        .unwrap()
}

async fn start(conn_tags: &[(&str, &str)]) -> (AppOpticsEmulator, AppOpticsClient) {
    let emulator = AppOpticsEmulator::start().await.unwrap();
    let client = connect(&emulator, conn_tags);
    (emulator, client)
}

/// `mt1 = now - 5` of the Python tests.
fn mt1() -> i64 {
    chrono::Utc::now().timestamp() - 5
}

fn t(pairs: &[(&str, &str)]) -> Tags {
    tags(pairs.iter().copied())
}

/// The Python suite's "search X=Y": `get_tagged(name, duration=60, tags_search="X=Y")`.
async fn search(client: &AppOpticsClient, name: &str, tag: &str, value: &str) -> Measurements {
    client
        .get_measurements(
            name,
            &MeasurementsQuery::last(Duration::from_secs(60))
                .with_resolution(1)
                .with_tags_search(format!("{tag}={value}")),
        )
        .await
        .unwrap()
}

/// The same read with `tags={X: Y}`.
async fn filter(client: &AppOpticsClient, name: &str, tag: &str, value: &str) -> Measurements {
    client
        .get_measurements(
            name,
            &MeasurementsQuery::last(Duration::from_secs(60))
                .with_resolution(1)
                .with_tag(tag, value),
        )
        .await
        .unwrap()
}

fn points(read: &Measurements) -> Vec<(i64, f64)> {
    read.series
        .iter()
        .flat_map(|s| s.measurements.iter().map(|p| (p.time, p.value.unwrap())))
        .collect()
}

mod test_aggregator {
    use super::*;
    use appoptics_client::MeasurementAggregator;
    use serde_json::json;

    #[test]
    fn test_initialize_measurements() {
        assert!(MeasurementAggregator::new().measurements().is_empty());
    }

    #[test]
    fn test_no_tags() {
        assert!(MeasurementAggregator::new().tags().is_empty());
    }

    #[test]
    fn test_constructor_tags() {
        let agg = MeasurementAggregator::new().with_tags(t(&[("sky", "blue")]));
        assert_eq!(agg.tags(), &t(&[("sky", "blue")]));
    }

    #[test]
    fn test_add_tags() {
        let mut agg = MeasurementAggregator::new().with_tags(t(&[("sky", "blue")]));
        agg.add_tags(t(&[("sky", "red"), ("coal", "black")]));
        assert_eq!(agg.tags(), &t(&[("sky", "red"), ("coal", "black")]));
    }

    #[test]
    fn test_set_tags() {
        let mut agg = MeasurementAggregator::new().with_tags(t(&[("sky", "blue")]));
        agg.set_tags(t(&[("coal", "black")]));
        assert_eq!(agg.tags(), &t(&[("coal", "black")]));
    }

    #[test]
    fn test_initialize_period() {
        assert_eq!(MeasurementAggregator::new().period(), None);
        assert_eq!(
            MeasurementAggregator::new().with_period(300).period(),
            Some(300)
        );
    }

    #[test]
    fn test_initialize_measure_time() {
        assert_eq!(MeasurementAggregator::new().measure_time(), None);
        assert_eq!(
            MeasurementAggregator::new()
                .with_measure_time(12345)
                .measure_time(),
            Some(12345)
        );
    }

    #[test]
    fn test_add_single_measurement() {
        let mut agg = MeasurementAggregator::new();
        agg.add("metric.one", 3.0).unwrap();
        let s = agg.measurements()["metric.one"];
        assert_eq!((s.count, s.sum, s.min, s.max), (1, 3.0, 3.0, 3.0));
    }

    #[test]
    fn test_add_multiple_measurements() {
        let mut agg = MeasurementAggregator::new();
        agg.add("metric.one", 3.1).unwrap();
        agg.add("metric.one", 7.2).unwrap();
        let s = agg.measurements()["metric.one"];
        assert_eq!((s.count, s.sum, s.min, s.max), (2, 3.1 + 7.2, 3.1, 7.2));
    }

    #[test]
    fn test_add_multiple_metrics() {
        let mut agg = MeasurementAggregator::new();
        agg.add("metric.one", 3.1).unwrap();
        agg.add("metric.one", 7.2).unwrap();
        for v in [42.0, 43.0, 44.0] {
            agg.add("metric.two", v).unwrap();
        }
        let one = agg.measurements()["metric.one"];
        assert_eq!(
            (one.count, one.sum, one.min, one.max),
            (2, 3.1 + 7.2, 3.1, 7.2)
        );
        let two = agg.measurements()["metric.two"];
        assert_eq!(
            (two.count, two.sum, two.min, two.max),
            (3, 129.0, 42.0, 44.0)
        );
    }

    #[test]
    fn test_to_payload() {
        // Adapted: tags instead of the legacy `source`.
        let mut agg = MeasurementAggregator::new().with_tags(t(&[("source", "mysource")]));
        agg.add("test.metric", 42.0).unwrap();
        agg.add("test.metric", 43.0).unwrap();
        assert_eq!(
            agg.to_md_payload(),
            json!({
                "measurements": [{"name": "test.metric", "count": 2, "sum": 85.0, "min": 42.0, "max": 43.0}],
                "tags": {"source": "mysource"},
            })
        );
    }

    #[test]
    fn test_to_payload_no_source() {
        let mut agg = MeasurementAggregator::new();
        agg.add("test.metric", 42.0).unwrap();
        assert_eq!(
            agg.to_payload(),
            json!({"measurements": [{"name": "test.metric", "count": 1, "sum": 42.0, "min": 42.0, "max": 42.0}]})
        );
    }

    #[test]
    fn test_value_not_in_payload() {
        let mut agg = MeasurementAggregator::new();
        agg.add("test.metric", 42.0).unwrap();
        assert!(agg.to_payload()["measurements"][0].get("value").is_none());
    }

    #[test]
    fn test_clear_clears_measurements() {
        let mut agg = MeasurementAggregator::new();
        agg.add("test.metric", 42.0).unwrap();
        agg.clear();
        assert!(agg.measurements().is_empty());
    }

    #[test]
    fn test_clear_clears_measure_time() {
        let mut agg = MeasurementAggregator::new().with_measure_time(12345);
        agg.clear();
        assert_eq!(agg.measure_time(), None);
    }

    #[tokio::test]
    async fn test_submit() {
        let (emulator, client) = start(&[]).await;
        let mut agg = MeasurementAggregator::new().with_tags(t(&[("host", "a")]));
        agg.add("test.metric", 42.0).unwrap();
        agg.submit(&client).await.unwrap();
        assert!(agg.measurements().is_empty());
        let stored = emulator.stored_points("test.metric");
        assert_eq!(stored.len(), 1);
        assert_eq!((stored[0].count, stored[0].value), (1, 42.0));
        assert_eq!(stored[0].tags, t(&[("host", "a")]));
    }

    #[test]
    fn test_period_default() {
        assert_eq!(MeasurementAggregator::new().period(), None);
    }

    #[test]
    fn test_period_attribute() {
        let mut agg = MeasurementAggregator::new();
        agg.set_period(Some(300));
        assert_eq!(agg.period(), Some(300));
    }

    #[test]
    fn test_measure_time_attribute() {
        let mut agg = MeasurementAggregator::new();
        agg.set_measure_time(Some(1_418_838_418));
        assert_eq!(agg.measure_time(), Some(1_418_838_418));
    }

    #[test]
    fn test_measure_time_default() {
        assert_eq!(MeasurementAggregator::new().measure_time(), None);
    }

    #[test]
    fn test_measure_time_in_payload() {
        let mut agg = MeasurementAggregator::new().with_measure_time(1_418_838_418);
        agg.add("test.metric", 42.0).unwrap();
        assert_eq!(agg.to_payload()["time"], 1_418_838_418);
    }

    #[test]
    fn test_measure_time_not_in_payload() {
        let mut agg = MeasurementAggregator::new();
        agg.add("test.metric", 42.0).unwrap();
        assert!(agg.to_payload().get("time").is_none());
    }

    #[test]
    fn test_floor_measure_time() {
        let agg = MeasurementAggregator::new()
            .with_measure_time(1_418_838_418)
            .with_period(60);
        assert_eq!(agg.floor_measure_time(), Some(1_418_838_360));
    }

    #[test]
    fn test_floor_measure_time_period_only() {
        let agg = MeasurementAggregator::new().with_period(60);
        assert_eq!(agg.floor_measure_time().unwrap() % 60, 0);
    }

    #[test]
    fn test_floor_measure_time_no_period() {
        let agg = MeasurementAggregator::new().with_measure_time(1_418_838_418);
        assert_eq!(agg.floor_measure_time(), Some(1_418_838_418));
    }

    #[test]
    fn test_floor_measure_time_no_period_no_measure_time() {
        assert_eq!(MeasurementAggregator::new().floor_measure_time(), None);
    }

    #[test]
    fn test_floored_measure_time_in_payload() {
        let mut agg = MeasurementAggregator::new()
            .with_measure_time(1_418_838_418)
            .with_period(60);
        agg.add("test.metric", 42.0).unwrap();
        assert_eq!(agg.to_payload()["time"], 1_418_838_360);
    }
}

mod test_alerts {
    use super::*;
    use appoptics_client::ListParams;
    use appoptics_client::model::{
        AlertSpec, Condition, ConditionTag, ConditionType, Service, SummaryFunction,
    };
    use futures_util::TryStreamExt as _;
    use serde_json::json;

    async fn count(client: &AppOpticsClient) -> usize {
        client
            .list_all_alerts(ListParams::new())
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len()
    }

    #[tokio::test]
    async fn test_list_alerts_when_none() {
        let (_e, client) = start(&[]).await;
        assert_eq!(count(&client).await, 0);
    }

    #[tokio::test]
    async fn test_create_alert_without_services_or_conditions() {
        let (_e, client) = start(&[]).await;
        let alert = client
            .create_alert(&AlertSpec::new("my_alert"))
            .await
            .unwrap();
        assert_eq!(alert.name, "my_alert");
        assert_ne!(alert.id, 0);
        assert!(alert.services.is_empty() && alert.conditions.is_empty());
        assert_eq!(count(&client).await, 1);
    }

    #[tokio::test]
    async fn test_adding_an_alert_with_description() {
        let (_e, client) = start(&[]).await;
        let alert = client
            .create_alert(&AlertSpec::new("my_alert").with_description("test_description"))
            .await
            .unwrap();
        assert_eq!(alert.description.as_deref(), Some("test_description"));
    }

    #[tokio::test]
    async fn test_create_alert_with_conditions() {
        let (_e, client) = start(&[]).await;
        let alert = client
            .create_alert(&AlertSpec::new("my_alert").with_condition(Condition::above("cpu", 42.0)))
            .await
            .unwrap();
        assert_eq!(alert.conditions.len(), 1);
        let c = &alert.conditions[0];
        assert_eq!(c.metric_name, "cpu");
        assert_eq!(c.condition_type, ConditionType::Above);
        assert_eq!(c.threshold, Some(42.0));
    }

    #[test]
    fn test_create_alert_with_add_condition() {
        let spec = AlertSpec::new("my_alert").with_condition(Condition::above("cpu", 200.0));
        assert_eq!(spec.conditions.len(), 1);
        assert_eq!(spec.conditions[0].condition_type, ConditionType::Above);
        assert_eq!(spec.conditions[0].metric_name, "cpu");
        assert_eq!(spec.conditions[0].threshold, Some(200.0));
    }

    #[tokio::test]
    async fn test_create_alert_with_condition_obj() {
        let (_e, client) = start(&[]).await;
        let condition_tags = vec![
            ConditionTag {
                name: "tag_name1".into(),
                grouped: false,
                values: vec!["tag_value1".into()],
            },
            ConditionTag {
                name: "tag_name2".into(),
                grouped: true,
                values: vec!["tag_value2".into()],
            },
        ];
        let mut mem = Condition::below("mem", 99.0);
        for tag in condition_tags.clone() {
            mem = mem.with_tag(tag);
        }
        let alert = client
            .create_alert(
                &AlertSpec::new("my_alert")
                    .with_condition(Condition::above("cpu", 42.0).with_source("web*"))
                    .with_condition(mem),
            )
            .await
            .unwrap();
        let read = client.get_alert(alert.id).await.unwrap();
        let [cpu, mem] = &read.conditions[..] else {
            panic!("{:?}", read.conditions);
        };
        assert_eq!(
            (
                cpu.metric_name.as_str(),
                cpu.source.as_deref(),
                cpu.threshold
            ),
            ("cpu", Some("web*"), Some(42.0))
        );
        assert_eq!(cpu.condition_type, ConditionType::Above);
        // Adapted: no legacy source is invented for the second condition.
        assert_eq!(
            (mem.metric_name.as_str(), mem.source.as_deref()),
            ("mem", None)
        );
        assert_eq!(mem.condition_type, ConditionType::Below);
        assert_eq!(mem.threshold, Some(99.0));
        assert_eq!(mem.tags, condition_tags);
    }

    #[tokio::test]
    async fn test_deleting_an_alert() {
        let (emulator, client) = start(&[]).await;
        client
            .create_alert(&AlertSpec::new("my_alert"))
            .await
            .unwrap();
        assert_eq!(count(&client).await, 1);
        emulator.requests().clear();
        assert!(client.delete_alert_named("my_alert").await.unwrap());
        let uris: Vec<String> = emulator
            .requests()
            .requests()
            .into_iter()
            .map(|r| format!("{} {}", r.method, r.uri))
            .collect();
        assert_eq!(
            uris,
            ["GET /v1/alerts?name=my_alert", "DELETE /v1/alerts/1"]
        );
        assert_eq!(count(&client).await, 0);
    }

    #[tokio::test]
    async fn test_deleting_an_inexistent_alert() {
        let (_e, client) = start(&[]).await;
        client
            .create_alert(&AlertSpec::new("say_my_name"))
            .await
            .unwrap();
        assert!(
            !client
                .delete_alert_named("say_my_wrong_name")
                .await
                .unwrap()
        );
        assert!(client.find_alert("say_my_name").await.unwrap().is_some());
    }

    #[test]
    fn test_create_alert_with_service_id() {
        let spec = AlertSpec::new("my_alert").with_service(1234);
        assert_eq!(spec.services, vec![1234]);
        assert!(spec.conditions.is_empty());
    }

    #[tokio::test]
    async fn test_create_alert_with_service_obj() {
        let (emulator, client) = start(&[]).await;
        let id = emulator.seed_service("Ops", "mail", json!({"addresses": "ops@example.com"}));
        let services = client
            .list_services(&ListParams::new())
            .await
            .unwrap()
            .items;
        let spec = AlertSpec::new("my_alert").with_service(&services[0]);
        assert_eq!(
            serde_json::to_value(&spec).unwrap()["services"],
            json!([id])
        );
        let alert = client.create_alert(&spec).await.unwrap();
        assert_eq!(alert.services.len(), 1);
        assert_eq!(alert.services[0].id, id);
    }

    #[test]
    fn test_add_above_condition() {
        let c = Condition::above("metric_test", 200.0)
            .with_summary_function(SummaryFunction::Average)
            .with_duration(5);
        assert_eq!(c.condition_type, ConditionType::Above);
        assert_eq!(
            (c.metric_name.as_str(), c.threshold, c.duration),
            ("metric_test", Some(200.0), Some(5))
        );
    }

    #[test]
    fn test_add_below_condition() {
        let c = Condition::below("metric_test", 200.0)
            .with_summary_function(SummaryFunction::Average)
            .with_duration(5);
        assert_eq!(c.condition_type, ConditionType::Below);
        assert_eq!((c.threshold, c.duration), (Some(200.0), Some(5)));
    }

    #[test]
    fn test_add_absent_condition() {
        let c = Condition::absent("metric_test", 5);
        assert_eq!(c.condition_type, ConditionType::Absent);
        assert_eq!(c.duration, Some(5));
    }

    #[test]
    fn test_immediate_condition() {
        let c = Condition::above("foo", 1.0);
        assert!(c.is_immediate());
        assert!(c.clone().with_duration(0).is_immediate());
        assert!(!c.clone().with_duration(60).is_immediate());
        assert!(c.with_duration(60).immediate().is_immediate());
    }

    #[tokio::test]
    async fn test_list_services() {
        let (emulator, client) = start(&[]).await;
        assert!(
            client
                .list_services(&ListParams::new())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        let settings = json!({"addresses": "someone@example.com"});
        let id = emulator.seed_service("Email Ops", "mail", settings.clone());
        assert_eq!(id, 1);
        let services = client
            .list_services(&ListParams::new())
            .await
            .unwrap()
            .items;
        assert_eq!(services.len(), 1);
        assert_eq!(services[0].title, "Email Ops");
        assert_eq!(services[0].service_type, "mail");
        assert_eq!(json!(services[0].settings), settings);
    }

    #[test]
    fn test_init_service() {
        let service = Service {
            id: 123,
            title: "the title".into(),
            service_type: "mail".into(),
            settings: serde_json::from_value(json!({"addresses": "a@b.c"})).unwrap(),
        };
        assert_eq!(
            (
                service.id,
                service.title.as_str(),
                service.service_type.as_str()
            ),
            (123, "the title", "mail")
        );
        assert_eq!(service.settings["addresses"], "a@b.c");
    }

    #[test]
    fn test_service_from_dict() {
        let service: Service = serde_json::from_value(
            json!({"id": 123, "title": "the title", "type": "slack", "settings": {"room": "a room"}}),
        )
        .unwrap();
        assert_eq!(service.id, 123);
        assert_eq!(service.title, "the title");
        assert_eq!(service.service_type, "slack");
        assert_eq!(service.settings["room"], "a room");
    }
}

mod test_annotations {
    use super::*;
    use appoptics_client::model::{AnnotationStream, AnnotationStreamEvents, NewAnnotation};
    use appoptics_client::{AnnotationQuery, ListParams};
    use serde_json::json;

    #[tokio::test]
    async fn test_get_annotation_stream() {
        let (_e, client) = start(&[]).await;
        client
            .post_annotation("My_Annotation", &NewAnnotation::new("deploy"))
            .await
            .unwrap();
        let stream = client
            .get_annotation_stream("My_Annotation", &AnnotationQuery::last(10))
            .await
            .unwrap();
        assert_eq!(stream.name, "My_Annotation");
        assert_eq!(stream.events["unassigned"][0].title, "deploy");
    }

    #[tokio::test]
    async fn test_get_payload() {
        let (_e, client) = start(&[]).await;
        client
            .post_annotation("My_Annotation", &NewAnnotation::new("x"))
            .await
            .unwrap();
        client
            .update_annotation_stream("My_Annotation", "My_Annotation_Display")
            .await
            .unwrap();
        let streams = client
            .list_annotation_streams(&ListParams::new())
            .await
            .unwrap()
            .items;
        assert_eq!(
            streams,
            vec![AnnotationStream {
                name: "My_Annotation".into(),
                display_name: Some("My_Annotation_Display".into()),
            }]
        );
    }

    #[test]
    fn test_from_dict() {
        let dict = json!({"name": "My_Annotation", "display_name": "My_Annotation_Display", "query": {}, "events": {}});
        let stream: AnnotationStream = serde_json::from_value(dict.clone()).unwrap();
        assert_eq!(
            stream.display_name.as_deref(),
            Some("My_Annotation_Display")
        );
        let events: AnnotationStreamEvents = serde_json::from_value(dict).unwrap();
        assert_eq!(events.name, "My_Annotation");
        assert!(events.events.is_empty());
    }
}

mod test_charts {
    use super::*;
    use appoptics_client::model::{
        Chart, ChartType, GroupFunction, Space, Stream, SummaryFunction,
    };
    use serde_json::json;

    async fn setup() -> (AppOpticsEmulator, AppOpticsClient, Space) {
        let (emulator, client) = start(&[("region", "us-east-1")]).await;
        let space = client.create_space("My Space").await.unwrap();
        (emulator, client, space)
    }

    fn stream(value: serde_json::Value) -> Stream {
        serde_json::from_value(value).unwrap()
    }

    #[tokio::test]
    async fn test_create_chart() {
        let (_e, client, space) = setup().await;
        client
            .submit(Measurement::new("my.metric", 42.0))
            .await
            .unwrap();
        client
            .submit(Measurement::new("my.metric2", 43.0))
            .await
            .unwrap();
        let chart = client
            .create_chart(
                space.id,
                &Chart::new("Typical chart")
                    .with_stream(stream(
                        json!({"metric": "my.metric", "source": "*", "summary_function": "max"}),
                    ))
                    .with_stream(stream(
                        json!({"metric": "my.metric2", "source": "foo", "color": "#FFFFFF"}),
                    )),
            )
            .await
            .unwrap();
        assert!(chart.id.is_some());
        let in_space = client.list_charts(space.id).await.unwrap();
        assert_eq!(in_space[0].id, chart.id);
        assert_eq!(chart.name.as_deref(), Some("Typical chart"));
        let s = &chart.streams;
        assert_eq!(s[0].metric.as_deref(), Some("my.metric"));
        assert_eq!(s[0].source.as_deref(), Some("*"));
        assert_eq!(s[0].summary_function, Some(SummaryFunction::Max));
        assert_eq!(s[1].metric.as_deref(), Some("my.metric2"));
        assert_eq!(s[1].source.as_deref(), Some("foo"));
        assert_eq!(s[1].color.as_deref(), Some("#FFFFFF"));
    }

    #[tokio::test]
    async fn test_create_chart_without_streams() {
        let (_e, client, space) = setup().await;
        let chart = client
            .create_chart(space.id, &Chart::new("Empty Chart"))
            .await
            .unwrap();
        assert_eq!(chart.chart_type, Some(ChartType::Line));
        assert!(chart.streams.is_empty());
    }

    #[tokio::test]
    async fn test_rename_chart() {
        let (_e, client, space) = setup().await;
        let chart = client
            .create_chart(space.id, &Chart::new("CPU"))
            .await
            .unwrap();
        let id = chart.id.unwrap();
        let renamed = client.rename_chart(space.id, id, "CPU 2").await.unwrap();
        assert_eq!(renamed.name.as_deref(), Some("CPU 2"));
        assert_eq!(
            client
                .get_chart(space.id, id)
                .await
                .unwrap()
                .name
                .as_deref(),
            Some("CPU 2")
        );
    }

    #[tokio::test]
    async fn test_delete_chart() {
        let (_e, client, space) = setup().await;
        let chart = client
            .create_chart(space.id, &Chart::new("cpu"))
            .await
            .unwrap();
        client
            .delete_chart(space.id, chart.id.unwrap())
            .await
            .unwrap();
        assert!(client.list_charts(space.id).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn test_add_stream_to_chart() {
        let (_e, client, space) = setup().await;
        let mut chart = client
            .create_chart(space.id, &Chart::new("cpu"))
            .await
            .unwrap();
        client
            .submit(Measurement::new("my.metric", 1.0))
            .await
            .unwrap();
        chart.streams.push(Stream::metric("my.metric"));
        let saved = client
            .update_chart(space.id, chart.id.unwrap(), &chart)
            .await
            .unwrap();
        assert_eq!(saved.streams.len(), 1);
        assert_eq!(saved.streams[0].metric.as_deref(), Some("my.metric"));
        assert_eq!(saved.streams[0].composite, None);
    }

    #[tokio::test]
    async fn test_get_chart_from_space() {
        let (_e, client, space) = setup().await;
        let chart = client
            .create_chart(space.id, &Chart::new("cpu"))
            .await
            .unwrap();
        let got = client.get_chart(space.id, chart.id.unwrap()).await.unwrap();
        assert_eq!((got.id, got.name), (chart.id, chart.name));
    }

    #[tokio::test]
    async fn test_find_chart_by_name() {
        let (_e, client, space) = setup().await;
        client
            .create_chart(space.id, &Chart::new("cpu"))
            .await
            .unwrap();
        let found = client.find_chart(space.id, "cpu").await.unwrap().unwrap();
        assert_eq!(found.name.as_deref(), Some("cpu"));
        assert!(client.find_chart(space.id, "mem").await.unwrap().is_none());
    }

    #[test]
    fn test_init_name() {
        assert_eq!(Chart::default().name, None);
        assert_eq!(Chart::new("cpu").name.as_deref(), Some("cpu"));
    }

    #[test]
    fn test_init_chart_type() {
        for kind in [ChartType::Line, ChartType::Stacked, ChartType::Bignumber] {
            assert_eq!(
                Chart::new("c").with_type(kind.clone()).chart_type,
                Some(kind)
            );
        }
    }

    #[test]
    fn test_init_streams() {
        assert!(Chart::new("c").streams.is_empty());
        let streams = vec![Stream::metric("a"), Stream::metric("b")];
        let chart = Chart::new("c")
            .with_stream(streams[0].clone())
            .with_stream(streams[1].clone());
        assert_eq!(chart.streams, streams);
    }

    #[test]
    fn test_init_streams_dict() {
        let a = stream(json!({"metric": "my.metric", "source": "blah", "composite": null}));
        let b = stream(json!({"metric": "other.metric", "source": "*", "composite": null}));
        assert_eq!(
            (a.metric.as_deref(), a.source.as_deref(), a.composite),
            (Some("my.metric"), Some("blah"), None)
        );
        assert_eq!(
            (b.metric.as_deref(), b.source.as_deref()),
            (Some("other.metric"), Some("*"))
        );
    }

    #[test]
    fn test_init_streams_group_functions() {
        let s = stream(
            json!({"metric": "my.metric", "group_function": "sum", "summary_function": "max"}),
        );
        assert_eq!(s.group_function, Some(GroupFunction::Sum));
        assert_eq!(s.summary_function, Some(SummaryFunction::Max));
    }

    #[test]
    fn test_init_min_max() {
        let chart = Chart::new("c").with_range(-42.0, 100.0);
        assert_eq!((chart.min, chart.max), (Some(-42.0), Some(100.0)));
    }

    #[test]
    fn test_init_label() {
        assert_eq!(
            Chart::new("c")
                .with_label("I heart charts")
                .label
                .as_deref(),
            Some("I heart charts")
        );
    }

    #[test]
    fn test_init_use_log_yaxis() {
        assert_eq!(
            Chart::new("c").with_log_yaxis(true).use_log_yaxis,
            Some(true)
        );
    }

    #[tokio::test]
    async fn test_save_chart() {
        let (_e, client, space) = setup().await;
        let chart = Chart::new("test");
        assert_eq!(chart.id, None);
        let saved = client.create_chart(space.id, &chart).await.unwrap();
        assert!(saved.id.is_some());
        assert_eq!(saved.chart_type, Some(ChartType::Line));
    }

    #[tokio::test]
    async fn test_save_persists_type() {
        let (_e, client, space) = setup().await;
        for kind in [ChartType::Stacked, ChartType::Bignumber] {
            let saved = client
                .create_chart(space.id, &Chart::new("c").with_type(kind.clone()))
                .await
                .unwrap();
            let read = client.get_chart(space.id, saved.id.unwrap()).await.unwrap();
            assert_eq!(read.chart_type, Some(kind));
        }
    }

    async fn saved(chart: Chart) -> Chart {
        let (_e, client, space) = setup().await;
        let id = client
            .create_chart(space.id, &chart)
            .await
            .unwrap()
            .id
            .unwrap();
        client.get_chart(space.id, id).await.unwrap()
    }

    #[tokio::test]
    async fn test_save_persists_min_max() {
        let read = saved(Chart::new("c").with_range(5.0, 30.0)).await;
        assert_eq!((read.min, read.max), (Some(5.0), Some(30.0)));
    }

    #[tokio::test]
    async fn test_save_persists_label() {
        assert_eq!(
            saved(Chart::new("c").with_label("my label"))
                .await
                .label
                .as_deref(),
            Some("my label")
        );
    }

    #[tokio::test]
    async fn test_save_persists_log_y_axis() {
        assert_eq!(
            saved(Chart::new("c").with_log_yaxis(true))
                .await
                .use_log_yaxis,
            Some(true)
        );
    }

    #[tokio::test]
    async fn test_save_persists_use_last_value() {
        assert_eq!(
            saved(Chart::new("c").with_use_last_value(true))
                .await
                .use_last_value,
            Some(true)
        );
    }

    #[tokio::test]
    async fn test_save_persists_related_space() {
        assert_eq!(
            saved(Chart::new("c").with_related_space(1234))
                .await
                .related_space,
            Some(1234)
        );
    }

    #[test]
    fn test_chart_is_not_persisted() {
        assert!(Chart::new("not saved").id.is_none());
    }

    #[test]
    fn test_chart_is_persisted_if_id_present() {
        let persisted = Chart {
            id: Some(42),
            ..Chart::new("c")
        };
        assert!(persisted.id.is_some());
        assert!(Chart::new("c").id.is_none());
    }

    #[test]
    fn test_new_stream_defaults() {
        let mut chart = Chart::new("test");
        chart.streams.push(Stream::metric("my.metric"));
        let s = &chart.streams[0];
        assert_eq!(s.metric.as_deref(), Some("my.metric"));
        // Adapted: no legacy `source: "*"` default.
        assert_eq!((s.source.as_deref(), s.composite.as_deref()), (None, None));
        assert_eq!(chart.streams.len(), 1);
    }

    #[test]
    fn test_new_stream_with_source() {
        let s = Stream {
            source: Some("prod*".into()),
            ..Stream::metric("my.metric")
        };
        assert_eq!(
            (s.source.as_deref(), s.composite.as_deref()),
            (Some("prod*"), None)
        );
    }

    #[test]
    fn test_new_stream_with_composite() {
        let s = Stream::composite(r#"s("my.metric", "*")"#);
        assert_eq!((s.metric.as_deref(), s.source.as_deref()), (None, None));
        assert_eq!(s.composite.as_deref(), Some(r#"s("my.metric", "*")"#));
    }

    #[test]
    fn test_get_payload() {
        // The type is left to create_chart, which sends `line` (see test_save_chart).
        assert_eq!(
            serde_json::to_value(Chart::default()).unwrap(),
            json!({"streams": []})
        );
    }

    #[test]
    fn test_get_payload_bignumber() {
        let chart = Chart::new("c")
            .with_type(ChartType::Bignumber)
            .with_stream(stream(json!({"metric": "my.metric", "source": "*"})))
            .with_use_last_value(false);
        let payload = serde_json::to_value(&chart).unwrap();
        assert_eq!(
            payload["streams"],
            json!([{"metric": "my.metric", "source": "*"}])
        );
        assert_eq!(payload["use_last_value"], json!(false));
    }

    #[test]
    fn test_streams_payload() {
        let chart = Chart::new("c")
            .with_stream(stream(json!({"metric": "some.metric", "source": null, "composite": null})))
            .with_stream(stream(
                json!({"metric": null, "source": null, "composite": "s(\"other.metric\", \"sf\", {function: \"sum\"})"}),
            ));
        let payload = serde_json::to_value(&chart).unwrap();
        assert_eq!(payload["streams"][0], json!({"metric": "some.metric"}));
        assert!(payload["streams"][1].get("metric").is_none());
    }

    #[test]
    fn test_get_payload_with_streams_dict() {
        let chart = Chart::new("c")
            .with_type(ChartType::Bignumber)
            .with_stream(stream(json!({"metric": "my.metric", "source": "*"})))
            .with_stream(stream(json!({"metric": "my.other.metric", "source": "*"})));
        let payload = serde_json::to_value(&chart).unwrap();
        assert_eq!(payload["streams"][0]["metric"], "my.metric");
        assert_eq!(payload["streams"][1]["metric"], "my.other.metric");
    }

    #[tokio::test]
    async fn test_delete_chart_model() {
        let (_e, client, space) = setup().await;
        let chart = client
            .create_chart(space.id, &Chart::new("cpu"))
            .await
            .unwrap();
        client
            .delete_chart(space.id, chart.id.unwrap())
            .await
            .unwrap();
        assert_eq!(client.list_charts(space.id).await.unwrap(), vec![]);
        assert!(
            client
                .get_space(space.id)
                .await
                .unwrap()
                .chart_ids()
                .is_empty()
        );
    }
}

mod test_connection {
    use super::*;

    #[tokio::test]
    async fn test_constructor_tags() {
        let (_e, client) = start(&[("sky", "blue")]).await;
        assert_eq!(client.tags(), &t(&[("sky", "blue")]));
    }

    #[tokio::test]
    async fn test_add_tags() {
        let (_e, client) = start(&[("sky", "blue")]).await;
        let client = client
            .with_added_tags(t(&[("sky", "red"), ("coal", "black")]))
            .unwrap();
        assert_eq!(client.tags(), &t(&[("sky", "red"), ("coal", "black")]));
    }

    #[tokio::test]
    async fn test_set_tags() {
        let (_e, client) = start(&[("sky", "blue")]).await;
        let client = client.with_tags(t(&[("coal", "black")])).unwrap();
        assert_eq!(client.tags(), &t(&[("coal", "black")]));
    }

    #[tokio::test]
    async fn test_custom_ua() {
        let emulator = AppOpticsEmulator::start().await.unwrap();
        let client = AppOpticsClient::builder()
            .with_token("key_test")
            .with_base_url(emulator.api_url())
            .with_client_options(ClientOptions::new().with_user_agent("foo"))
            .build()
            .unwrap();
        client
            .list_metrics(&appoptics_client::ListParams::new())
            .await
            .unwrap();
        let requests = emulator.requests().requests();
        assert_eq!(requests[0].header("user-agent"), Some("foo"));
        // And the default one names this library.
        let default = connect(&emulator, &[]);
        default
            .list_metrics(&appoptics_client::ListParams::new())
            .await
            .unwrap();
        let ua = emulator.requests().requests()[1]
            .header("user-agent")
            .unwrap()
            .to_owned();
        assert!(ua.starts_with("metrics-hub-appoptics/"), "{ua}");
    }
}

mod test_exceptions {
    use appoptics_client::error::parse_error_body;
    use metrics_core::Error;
    use metrics_core::reqwest::StatusCode;
    use metrics_core::reqwest::header::HeaderMap;

    fn message(status: u16, body: &str) -> String {
        parse_error_body(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
        .message
        .unwrap()
    }

    #[test]
    fn test_init() {
        let err = Error::api("appoptics", 123, None, "Bad request etc");
        assert_eq!(err.status(), Some(123));
        assert!(err.to_string().ends_with("Bad request etc"), "{err}");
    }

    #[test]
    fn test_parse_error_message_standard() {
        assert_eq!(message(400, "a standard message"), "a standard message");
    }

    #[test]
    fn test_parse_error_message_request_scalar() {
        assert_eq!(
            message(400, r#"{"errors":{"request":"test error message"}}"#),
            "request: test error message"
        );
    }

    #[test]
    fn test_parse_error_message_request() {
        assert_eq!(
            message(400, r#"{"errors":{"request":["Not found"]}}"#),
            "request: Not found"
        );
    }

    #[test]
    fn test_parse_error_message_request_multiple() {
        assert_eq!(
            message(
                400,
                r#"{"errors":{"request":["Not found","Another error"]}}"#
            ),
            "request: Not found, request: Another error"
        );
    }

    #[test]
    fn test_parse_error_message_params() {
        assert_eq!(
            message(400, r#"{"errors":{"params":{"time":["too far in past"]}}}"#),
            "params: time: too far in past"
        );
    }

    #[test]
    fn test_parse_error_message_params_multi_message() {
        assert_eq!(
            message(
                400,
                r#"{"errors":{"params":{"name":["duplicate etc","bad character etc"]}}}"#
            ),
            "params: name: duplicate etc, bad character etc"
        );
    }

    #[test]
    fn test_parse_error_message_params_multiple() {
        let text = message(
            400,
            r#"{"errors":{"params":{"time":["too far in past"],"name":"mymetricname"}}}"#,
        );
        assert!(text.contains("params: time: too far in past"), "{text}");
        assert!(text.contains("params: name: mymetricname"), "{text}");
    }

    #[test]
    fn test_parse_error_message_params_multiple_2nd_level() {
        assert_eq!(
            message(
                400,
                r#"{"errors":{"params":{"conditions":{"duration":["must be set"]}}}}"#
            ),
            "params: conditions: duration: must be set"
        );
    }

    #[test]
    fn test_error_message() {
        let err = Error::api("appoptics", 400, None, message(400, "Standard message"));
        assert_eq!(
            err.to_string(),
            "appoptics: the server answered HTTP 400: Standard message"
        );
        let err = Error::api(
            "appoptics",
            400,
            None,
            message(400, r#"{"errors":{"request":["Not found"]}}"#),
        );
        assert_eq!(
            err.to_string(),
            "appoptics: the server answered HTTP 400: request: Not found"
        );
    }

    #[test]
    fn test_error_vs_errors() {
        assert_eq!(
            message(
                403,
                r#"{"request_time":1467306906,"error":"You have hit the rate limit, etc"}"#
            ),
            "You have hit the rate limit, etc"
        );
    }
}

mod test_metrics {
    use super::*;
    use appoptics_client::ListParams;
    use appoptics_client::model::{MetricSelector, MetricType};
    use futures_util::TryStreamExt as _;
    use serde_json::json;

    #[tokio::test]
    async fn test_list_metrics_when_there_are_no_metrics() {
        let (_e, client) = start(&[("region", "us-east-1")]).await;
        assert!(
            client
                .list_metrics(&ListParams::new())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[tokio::test]
    async fn test_list_all_metrics() {
        let (emulator, client) = start(&[("region", "us-east-1")]).await;
        for i in 0..12 {
            emulator.seed_metric(&json!({
                "name": format!("m{i:02}"), "display_name": "test name", "type": "gauge",
                "attributes": {"created_by_ua": "fake"}, "description": "a description", "period": 60
            }));
        }
        emulator.requests().clear();
        let all: Vec<_> = client
            .list_all_metrics(ListParams::new().with_length(5).with_offset(0))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(all.len(), 12);
        assert_eq!(emulator.requests().count(), 3);
    }

    #[tokio::test]
    async fn test_list_metrics_adding_gauge() {
        let (_e, client) = start(&[("region", "us-east-1")]).await;
        client
            .submit(Measurement::new("gauge_1", 1.0).with_description("desc 1"))
            .await
            .unwrap();
        client
            .submit(Measurement::new("gauge_2", 2.0).with_description("desc 2"))
            .await
            .unwrap();
        let metrics = client.list_metrics(&ListParams::new()).await.unwrap().items;
        assert_eq!(metrics.len(), 2);
        assert_eq!(
            (metrics[0].name.as_str(), metrics[0].description.as_deref()),
            ("gauge_1", Some("desc 1"))
        );
        assert_eq!(
            (metrics[1].name.as_str(), metrics[1].description.as_deref()),
            ("gauge_2", Some("desc 2"))
        );
        assert_eq!(metrics[0].metric_type, MetricType::Gauge);
    }

    #[tokio::test]
    async fn test_deleting_a_gauge() {
        let (_e, client) = start(&[("region", "us-east-1")]).await;
        client
            .submit(Measurement::new("test", 100.0))
            .await
            .unwrap();
        assert_eq!(
            client
                .list_metrics(&ListParams::new())
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        client.delete_metric("test").await.unwrap();
        assert!(
            client
                .list_metrics(&ListParams::new())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[tokio::test]
    async fn test_deleting_a_batch_of_gauges() {
        let (_e, client) = start(&[("region", "us-east-1")]).await;
        client
            .submit(Measurement::new("test", 100.0))
            .await
            .unwrap();
        client
            .submit(Measurement::new("test2", 100.0))
            .await
            .unwrap();
        assert_eq!(
            client
                .list_metrics(&ListParams::new())
                .await
                .unwrap()
                .items
                .len(),
            2
        );
        client
            .delete_metrics(&MetricSelector::Names(vec!["test".into(), "test2".into()]))
            .await
            .unwrap();
        assert!(
            client
                .list_metrics(&ListParams::new())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[tokio::test]
    async fn test_get_gauge_basic() {
        let (_e, client) = start(&[("region", "us-east-1")]).await;
        client.submit(Measurement::new("1", 10.0)).await.unwrap();
        let metric = client.get_metric("1").await.unwrap();
        assert_eq!(metric.name, "1");
        assert_eq!(metric.metric_type, MetricType::Gauge);
    }

    #[tokio::test]
    async fn test_add_in_gauge() {
        // Adapted: explicit times, so that points a second apart stay apart at resolution 1.
        let (_e, client) = start(&[("region", "us-east-1")]).await;
        let now = mt1();
        let query = MeasurementsQuery::last(Duration::from_secs(86_400))
            .with_resolution(1)
            .with_tag("region", "us-east-1");
        let read = || client.get_measurements("Test", &query);
        client
            .submit(
                Measurement::new("Test", 10.0)
                    .with_tags(t(&[("region", "us-east-1")]))
                    .with_timestamp(now - 2),
            )
            .await
            .unwrap();
        let got = read().await.unwrap();
        assert_eq!(got.name.as_deref(), Some("Test"));
        assert_eq!(got.series[0].measurements[0].value, Some(10.0));
        client
            .submit(Measurement::new("Test", 1.0).with_timestamp(now - 1))
            .await
            .unwrap();
        let got = read().await.unwrap();
        assert_eq!(got.series[0].measurements.len(), 2);
        assert_eq!(got.series[0].measurements[1].value, Some(1.0));
        client
            .submit(Measurement::new("Test", 5.0).with_timestamp(now))
            .await
            .unwrap();
        let got = read().await.unwrap();
        assert_eq!(got.series[0].measurements.len(), 3);
        assert_eq!(got.series[0].measurements[2].value, Some(5.0));
    }

    #[tokio::test]
    async fn test_md_inherit_tags() {
        let (_e, client) = start(&[]).await;
        let client = client
            .with_tags(t(&[("company", "AppOptics"), ("hi", "four")]))
            .unwrap();
        let m = client
            .resolve_measurement(
                Measurement::new("user_cpu", 20.2)
                    .with_tags(t(&[("hi", "five")]))
                    .with_inherit_tags(true),
            )
            .unwrap();
        assert_eq!(
            m.tags(),
            Some(&t(&[("hi", "five"), ("company", "AppOptics")]))
        );
    }

    #[tokio::test]
    async fn test_md_donot_inherit_tags() {
        let (_e, client) = start(&[]).await;
        let client = client
            .with_tags(t(&[("company", "AppOptics"), ("hi", "four")]))
            .unwrap();
        let m = client
            .resolve_measurement(Measurement::new("user_cpu", 20.2).with_tags(t(&[("hi", "five")])))
            .unwrap();
        assert_eq!(m.tags(), Some(&t(&[("hi", "five")])));
    }

    #[tokio::test]
    async fn test_md_submit() {
        let (_e, client) = start(&[]).await;
        let mt1 = mt1();
        client
            .submit(
                Measurement::new("user_cpu", 20.2)
                    .with_timestamp(mt1)
                    .with_tags(t(&[("hostname", "web-1")])),
            )
            .await
            .unwrap();
        let read = search(&client, "user_cpu", "hostname", "web-1").await;
        assert_eq!(read.series.len(), 1);
        assert_eq!(read.series[0].tags, t(&[("hostname", "web-1")]));
        let read = filter(&client, "user_cpu", "hostname", "web-1").await;
        assert_eq!(read.series.len(), 1);
        assert_eq!(points(&read), vec![(mt1, 20.2)]);
    }

    #[tokio::test]
    async fn test_merge_tags() {
        let (_e, client) = start(&[("company", "AppOptics")]).await;
        let mt1 = mt1();
        client
            .submit(
                Measurement::new("user_cpu", 20.2)
                    .with_timestamp(mt1)
                    .with_tags(t(&[("hostname", "web-1")]))
                    .with_inherit_tags(true),
            )
            .await
            .unwrap();
        for (tag, value) in [("hostname", "web-1"), ("company", "AppOptics")] {
            let read = search(&client, "user_cpu", tag, value).await;
            assert_eq!(read.series.len(), 1, "{tag}");
            assert_eq!(points(&read), vec![(mt1, 20.2)], "{tag}");
        }
    }

    #[tokio::test]
    async fn test_submit_transparent_tagging() {
        let (_e, client) = start(&[]).await;
        let mt1 = mt1();
        client
            .submit(
                Measurement::new("user_cpu", 20.2)
                    .with_timestamp(mt1)
                    .with_tags(t(&[("hostname", "web-1")])),
            )
            .await
            .unwrap();
        let read = search(&client, "user_cpu", "hostname", "web-1").await;
        assert_eq!(read.series.len(), 1);
        assert_eq!(points(&read), vec![(mt1, 20.2)]);
    }
}

mod test_param_url_encoding {
    use super::*;
    use appoptics_client::{AnnotationQuery, ListParams};

    #[tokio::test]
    async fn test_string_encoding() {
        let (emulator, client) = start(&[]).await;
        client
            .list_metrics(&ListParams::new().with_name("abcd"))
            .await
            .unwrap();
        assert_eq!(
            emulator.requests().requests()[0].uri,
            "/v1/metrics?name=abcd"
        );
    }

    #[tokio::test]
    async fn test_list_encoding() {
        let (emulator, client) = start(&[]).await;
        let _ = client
            .get_annotation_stream(
                "s",
                &AnnotationQuery::last(1).with_source("a").with_source("b"),
            )
            .await;
        let uri = &emulator.requests().requests()[0].uri;
        assert!(uri.ends_with("sources%5B%5D=a&sources%5B%5D=b"), "{uri}");
    }

    #[tokio::test]
    async fn test_empty_encoding() {
        let (emulator, client) = start(&[]).await;
        client.list_metrics(&ListParams::new()).await.unwrap();
        assert_eq!(emulator.requests().requests()[0].uri, "/v1/metrics");
    }
}

mod test_process_response {
    use super::*;
    use metrics_core::Error;

    #[tokio::test]
    async fn test_get_authentication_failure() {
        let (emulator, client) = start(&[]).await;
        emulator.set_token(Some("another"));
        let err = client.get_metric("cpu").await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
        assert!(
            err.to_string().contains("request: Authorization Required"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn test_post_authentication_failure() {
        let (emulator, client) = start(&[("h", "a")]).await;
        emulator.set_token(Some("another"));
        let err = client
            .submit(Measurement::new("cpu", 1.0))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("Credentials are required to access this resource."),
            "{err}"
        );
    }
}

mod test_queue {
    use super::*;
    use appoptics_client::MeasurementAggregator;
    use metrics_core::Error;

    fn sky() -> Tags {
        t(&[("sky", "blue")])
    }

    fn stored_values(emulator: &AppOpticsEmulator, metric: &str) -> Vec<f64> {
        emulator
            .stored_points(metric)
            .iter()
            .map(|p| p.value)
            .collect()
    }

    #[tokio::test]
    async fn test_empty_queue() {
        let (_e, client) = start(&[]).await;
        let q = client.queue().build().unwrap();
        assert_eq!((q.len(), q.chunk_count()), (0, 0));
    }

    #[tokio::test]
    async fn test_no_tags() {
        let (_e, client) = start(&[]).await;
        assert!(client.queue().build().unwrap().tags().is_empty());
    }

    #[tokio::test]
    async fn test_inherited_tags() {
        let (emulator, _client) = start(&[]).await;
        let conn2 = connect(&emulator, &[("sky", "blue")]);
        let q = conn2.queue().build().unwrap();
        q.add_tagged("user_cpu", 10.0, Tags::new()).await.unwrap();
        q.submit().await.unwrap();
        let read = search(&conn2, "user_cpu", "sky", "blue").await;
        assert_eq!(read.series.len(), 1);
        assert_eq!(read.series[0].tags, sky());
        assert_eq!(points(&read).len(), 1);
        assert_eq!(points(&read)[0].1, 10.0);
    }

    #[tokio::test]
    async fn test_inherit_connection_level_tags() {
        let (_e, client) = start(&[("sky", "blue")]).await;
        let q = client.queue().build().unwrap();
        q.add_measurement(
            Measurement::new("user_cpu", 10.0)
                .with_tags(t(&[("hi", "five")]))
                .with_inherit_tags(true),
        )
        .await
        .unwrap();
        assert_eq!(
            q.pending()[0].tags(),
            Some(&t(&[("sky", "blue"), ("hi", "five")]))
        );
    }

    #[tokio::test]
    async fn test_ignore_connection_queue_level_tags() {
        let (_e, client) = start(&[("sky", "blue")]).await;
        let q = client
            .queue()
            .with_tags(t(&[("service", "api")]))
            .build()
            .unwrap();
        q.add_tagged("user_cpu", 10.0, t(&[("hi", "five")]))
            .await
            .unwrap();
        assert_eq!(q.pending()[0].tags(), Some(&t(&[("hi", "five")])));
        q.submit().await.unwrap();
        assert!(
            search(&client, "user_cpu", "sky", "blue")
                .await
                .series
                .is_empty()
        );
    }

    #[tokio::test]
    async fn test_inherit_connection_level_tags_through_add() {
        let (_e, client) = start(&[("sky", "blue"), ("company", "AppOptics")]).await;
        let q = client.queue().build().unwrap();
        q.add("user_cpu", 100.0).await.unwrap();
        assert_eq!(q.pending()[0].tags(), Some(client.tags()));
    }

    #[tokio::test]
    async fn test_inherit_queue_connection_level_tags() {
        let (_e, client) = start(&[("sky", "blue"), ("company", "AppOptics")]).await;
        let q = client
            .queue()
            .with_tags(t(&[("service", "api"), ("hi", "four"), ("sky", "red")]))
            .build()
            .unwrap();
        q.add_measurement(
            Measurement::new("user_cpu", 10.0)
                .with_tags(t(&[("hi", "five")]))
                .with_inherit_tags(true),
        )
        .await
        .unwrap();
        assert_eq!(
            q.pending()[0].tags(),
            Some(&t(&[
                ("sky", "red"),
                ("service", "api"),
                ("hi", "five"),
                ("company", "AppOptics")
            ]))
        );
    }

    #[tokio::test]
    async fn test_inherit_queue_level_tags() {
        let (_e, client) = start(&[]).await;
        let q = client
            .queue()
            .with_tags(t(&[("service", "api"), ("hi", "four")]))
            .build()
            .unwrap();
        q.add_measurement(
            Measurement::new("user_cpu", 10.0)
                .with_tags(t(&[("hi", "five")]))
                .with_inherit_tags(true),
        )
        .await
        .unwrap();
        assert_eq!(
            q.pending()[0].tags(),
            Some(&t(&[("service", "api"), ("hi", "five")]))
        );
    }

    #[tokio::test]
    async fn test_constructor_tags() {
        let (_e, client) = start(&[("sky", "blue")]).await;
        let q = client
            .queue()
            .with_tags(t(&[("sky", "red"), ("coal", "black")]))
            .build()
            .unwrap();
        assert_eq!(q.tags(), &t(&[("sky", "red"), ("coal", "black")]));
    }

    #[tokio::test]
    async fn test_add_tags() {
        let (_e, client) = start(&[]).await;
        let mut q = client.queue().build().unwrap();
        q.add_tags(t(&[("mercury", "silver")])).unwrap();
        assert_eq!(q.tags().len(), 1);
    }

    #[tokio::test]
    async fn test_set_tags() {
        let (_e, client) = start(&[]).await;
        let mut q = client.queue().build().unwrap();
        q.add_tags(t(&[("mercury", "silver")])).unwrap();
        q.set_tags(t(&[("sky", "blue"), ("mercury", "silver")]))
            .unwrap();
        assert_eq!(q.tags(), &t(&[("sky", "blue"), ("mercury", "silver")]));
    }

    #[tokio::test]
    async fn test_single_measurement_gauge() {
        let (_e, client) = start(&[]).await;
        let q = client.queue().build().unwrap();
        q.add_tagged("temperature", 22.1, sky()).await.unwrap();
        assert_eq!((q.chunk_count(), q.len()), (1, 1));
    }

    #[tokio::test]
    async fn test_default_type_measurement() {
        let (_e, client) = start(&[]).await;
        let q = client.queue().build().unwrap();
        q.add_tagged("temperature", 22.1, sky()).await.unwrap();
        assert_eq!(q.pending().len(), 1);
        assert_eq!(q.pending()[0].name(), "temperature");
    }

    #[tokio::test]
    async fn test_num_metrics_in_queue() {
        let (_e, client) = start(&[]).await;
        let q = client.queue().build().unwrap();
        for _ in 0..290 {
            q.add_tagged("temperature", 22.1, sky()).await.unwrap();
        }
        assert_eq!(q.len(), 290);
        for _ in 0..100 {
            q.add_tagged("temperature", 22.1, sky()).await.unwrap();
        }
        assert_eq!(q.len(), 390);
    }

    #[tokio::test]
    async fn test_auto_submit_on_metric_count() {
        let (emulator, client) = start(&[]).await;
        let q = client
            .queue()
            .with_auto_submit_count(10)
            .with_tags(sky())
            .build()
            .unwrap();
        for _ in 0..9 {
            q.add("user_cpu", 10.0).await.unwrap();
        }
        assert_eq!(q.len(), 9);
        assert!(emulator.metric_names().is_empty());
        q.add("user_cpu", 10.0).await.unwrap();
        assert_eq!(q.len(), 0);
        assert_eq!(emulator.metric_names().len(), 1);
    }

    #[tokio::test]
    async fn test_reach_chunk_limit() {
        let (_e, client) = start(&[]).await;
        let q = client.queue().build().unwrap();
        for _ in 0..300 {
            q.add_tagged("temperature", 22.1, sky()).await.unwrap();
        }
        assert_eq!((q.chunk_count(), q.len()), (1, 300));
        q.add_tagged("temperature", 22.1, sky()).await.unwrap();
        assert_eq!(q.chunk_count(), 2);
        assert_eq!(q.len() % q.chunk_size(), 1);
    }

    #[tokio::test]
    async fn test_submit_context_manager() {
        let (emulator, client) = start(&[]).await;
        let q = client.queue().build().unwrap();
        let outcome: Result<(), Error> = q
            .scope(async |q| {
                q.add_tagged("temperature", 32.0, sky()).await?;
                Err(Error::invalid_input("test", "ValueError"))
            })
            .await;
        assert!(matches!(outcome, Err(Error::InvalidInput { .. })));
        let metric = client.get_metric("temperature").await.unwrap();
        assert_eq!(metric.name, "temperature");
        assert_eq!(metric.description, None);
        assert_eq!(emulator.stored_points("temperature").len(), 1);
    }

    #[tokio::test]
    async fn test_submit_one_measurement_batch_mode() {
        let (emulator, client) = start(&[]).await;
        let q = client.queue().build().unwrap();
        q.add_tagged("temperature", 22.1, sky()).await.unwrap();
        q.submit().await.unwrap();
        assert_eq!(emulator.metric_names().len(), 1);
        assert_eq!(stored_values(&emulator, "temperature"), vec![22.1]);
        q.add_tagged("temperature", 23.0, sky()).await.unwrap();
        q.submit().await.unwrap();
        assert_eq!(stored_values(&emulator, "temperature"), vec![22.1, 23.0]);
    }

    #[tokio::test]
    async fn test_submit_tons_of_measurement_batch_mode() {
        let (emulator, client) = start(&[]).await;
        let q = client.queue().build().unwrap();
        let expected: Vec<f64> = (1..=300).map(f64::from).collect();
        for v in &expected {
            q.add_tagged("temperature", *v, sky()).await.unwrap();
        }
        q.submit().await.unwrap();
        assert_eq!(emulator.metric_names().len(), 1);
        assert_eq!(stored_values(&emulator, "temperature"), expected);
        for v in &expected {
            q.add_tagged("cpu_load", *v, sky()).await.unwrap();
        }
        q.submit().await.unwrap();
        assert_eq!(emulator.metric_names().len(), 2);
        assert_eq!(stored_values(&emulator, "cpu_load"), expected);
    }

    #[tokio::test]
    async fn test_add_aggregator() {
        // Adapted: the legacy `source` becomes a tag.
        let (_e, client) = start(&[]).await;
        let q = client.queue().build().unwrap();
        let mut agg = MeasurementAggregator::new()
            .with_tags(t(&[("source", "mysource")]))
            .with_period(10);
        agg.add("foo", 42.0).unwrap();
        agg.add("bar", 37.0).unwrap();
        q.add_aggregator(&mut agg).await.unwrap();
        assert!(agg.measurements().is_empty());
        let pending = q.pending();
        let mut names: Vec<&str> = pending.iter().map(Measurement::name).collect();
        names.sort_unstable();
        assert_eq!(names, ["bar", "foo"]);
        for m in &pending {
            assert_eq!(m.tags(), Some(&t(&[("source", "mysource")])));
            assert_eq!(m.timestamp().unwrap() % 10, 0);
        }
    }

    #[tokio::test]
    async fn test_md_submit() {
        let (_e, client) = start(&[]).await;
        let mut q = client.queue().build().unwrap();
        q.set_tags(t(&[("hostname", "web-1")])).unwrap();
        let mt1 = mt1();
        q.add_measurement(Measurement::new("system_cpu", 3.2).with_timestamp(mt1))
            .await
            .unwrap();
        assert_eq!(q.len(), 1);
        q.submit().await.unwrap();
        let read = search(&client, "system_cpu", "hostname", "web-1").await;
        assert_eq!(read.series.len(), 1);
        assert_eq!(read.series[0].tags, t(&[("hostname", "web-1")]));
        assert_eq!(points(&read), vec![(mt1, 3.2)]);
    }

    #[tokio::test]
    async fn test_md_measurement_level_tag() {
        let (_e, client) = start(&[]).await;
        let q = client
            .queue()
            .with_tags(t(&[("hostname", "web-1")]))
            .build()
            .unwrap();
        let mt1 = mt1();
        q.add_measurement(
            Measurement::new("system_cpu", 33.22)
                .with_timestamp(mt1)
                .with_tags(t(&[("user", "james")]))
                .with_inherit_tags(true),
        )
        .await
        .unwrap();
        q.submit().await.unwrap();
        for (tag, value) in [("hostname", "web-1"), ("user", "james")] {
            let read = search(&client, "system_cpu", tag, value).await;
            assert_eq!(read.series.len(), 1, "{tag}");
            assert_eq!(points(&read), vec![(mt1, 33.22)]);
        }
    }

    #[tokio::test]
    async fn test_md_measurement_level_tag_supersedes() {
        let (_e, client) = start(&[]).await;
        let q = client
            .queue()
            .with_tags(t(&[("hostname", "web-1")]))
            .build()
            .unwrap();
        q.add_measurement(
            Measurement::new("system_cpu", 33.22)
                .with_timestamp(mt1())
                .with_tags(t(&[("hostname", "web-2")])),
        )
        .await
        .unwrap();
        q.submit().await.unwrap();
        assert!(
            search(&client, "system_cpu", "hostname", "web-1")
                .await
                .series
                .is_empty()
        );
        let read = search(&client, "system_cpu", "hostname", "web-2").await;
        assert_eq!(read.series.len(), 1);
        assert_eq!(points(&read).len(), 1);
    }

    #[tokio::test]
    async fn test_side_by_side() {
        // Adapted: two distinct times, so that resolution 1 keeps two points.
        let (_e, client) = start(&[]).await;
        let q = client
            .queue()
            .with_tags(t(&[("hostname", "web-1")]))
            .build()
            .unwrap();
        let mt1 = mt1();
        q.add_measurement(Measurement::new("system_cpu", 10.0).with_timestamp(mt1 - 1))
            .await
            .unwrap();
        q.add_measurement(
            Measurement::new("system_cpu", 20.0)
                .with_timestamp(mt1)
                .with_tags(Tags::new()),
        )
        .await
        .unwrap();
        q.submit().await.unwrap();
        let read = search(&client, "system_cpu", "hostname", "web-1").await;
        assert_eq!(read.series.len(), 1);
        let values: Vec<f64> = points(&read).into_iter().map(|(_, v)| v).collect();
        assert_eq!(values, [10.0, 20.0]);
    }

    #[tokio::test]
    async fn test_md_auto_submit_on_metric_count() {
        let (emulator, client) = start(&[]).await;
        let q = client
            .queue()
            .with_auto_submit_count(2)
            .with_tags(t(&[("region", "us-east-1")]))
            .build()
            .unwrap();
        q.add("untagged_cpu", 10.0).await.unwrap();
        q.add_tagged("tagged_cpu", 20.0, t(&[("hostname", "web-2")]))
            .await
            .unwrap();
        assert_eq!(q.len(), 0);
        client.get_metric("untagged_cpu").await.unwrap();
        assert_eq!(emulator.stored_points("untagged_cpu").len(), 1);
        assert_eq!(
            search(&client, "tagged_cpu", "hostname", "web-2")
                .await
                .series
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn test_transparent_submit_md() {
        let (_e, client) = start(&[]).await;
        let q = client.queue().build().unwrap();
        let mt1 = mt1();
        q.add_measurement(
            Measurement::new("system_cpu", 3.2)
                .with_timestamp(mt1)
                .with_tags(t(&[("hostname", "web-1")])),
        )
        .await
        .unwrap();
        assert_eq!(q.len(), 1);
        q.submit().await.unwrap();
        let read = search(&client, "system_cpu", "hostname", "web-1").await;
        assert_eq!(read.series.len(), 1);
        assert_eq!(points(&read), vec![(mt1, 3.2)]);
    }
}

mod test_retry_logic {
    use super::*;
    use appoptics_client::ListParams;
    use metrics_emulators::Fault;

    #[tokio::test]
    async fn test_list_metrics_with_retries() {
        let (emulator, client) = start(&[]).await;
        emulator.faults().inject(
            Fault::Status {
                status: 500,
                retry_after: None,
                body: String::new(),
            },
            1,
        );
        assert!(
            client
                .list_metrics(&ListParams::new())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert_eq!(emulator.requests().count(), 2);
    }
}

mod test_sanitization {
    use super::*;
    use appoptics_client::Sanitizer;
    use appoptics_client::validate::sanitize_metric_name;

    #[test]
    fn test_sanitize_no_op() {
        for name in ["323***", "name1", "name2"] {
            assert_eq!(Sanitizer::NoOp.apply(name), name);
        }
    }

    #[tokio::test]
    async fn test_sanitize_metric_name() {
        let valid = "abcdefghijklmnopqrstuvwxyz.:-_";
        assert_eq!(sanitize_metric_name(valid), valid);
        assert_eq!(
            sanitize_metric_name(&valid.to_uppercase()),
            valid.to_uppercase()
        );
        assert_eq!(sanitize_metric_name(&"a".repeat(500)), "a".repeat(255));
        assert_eq!(
            sanitize_metric_name("   \t\nbat$$$*[]()m#@%^&=`~an"),
            "-bat-m-an"
        );
        assert_eq!(sanitize_metric_name("Just*toBeSafe"), "Just-toBeSafe");
        // And through a client that sanitizes: the live-suite name is accepted.
        let emulator = AppOpticsEmulator::start().await.unwrap();
        let client = AppOpticsClient::builder()
            .with_token("key_test")
            .with_base_url(emulator.api_url())
            .with_tag("h", "a")
            .with_sanitizer(Sanitizer::MetricName)
            .build()
            .unwrap();
        client
            .submit(Measurement::new(
                "I AM #*@#@983221 CRazy((\\\\] invalid",
                1.0,
            ))
            .await
            .unwrap();
        assert_eq!(emulator.metric_names(), ["I-AM-983221-CRazy-invalid"]);
    }
}

mod test_spaces {
    use super::*;
    use appoptics_client::ListParams;
    use appoptics_client::model::{
        Chart, ChartType, GroupFunction, Space, Stream, SummaryFunction,
    };
    use futures_util::TryStreamExt as _;
    use metrics_core::Error;
    use serde_json::json;

    async fn spaces(client: &AppOpticsClient) -> Vec<Space> {
        client
            .list_all_spaces(ListParams::new())
            .try_collect()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn test_list_spaces() {
        let (_e, client) = start(&[]).await;
        client.create_space("My Space").await.unwrap();
        assert_eq!(spaces(&client).await.len(), 1);
    }

    #[tokio::test]
    async fn test_list_spaces_when_none() {
        let (_e, client) = start(&[]).await;
        assert!(spaces(&client).await.is_empty());
    }

    #[tokio::test]
    async fn test_get_space() {
        let (_e, client) = start(&[]).await;
        let space = client.create_space("My Space").await.unwrap();
        let got = client.get_space(space.id).await.unwrap();
        assert_eq!((got.id, got.name), (space.id, space.name));
    }

    #[tokio::test]
    async fn test_find_space() {
        let (emulator, client) = start(&[]).await;
        let space = client.create_space("My Space").await.unwrap();
        emulator.requests().clear();
        let found = client.find_space("My Space").await.unwrap().unwrap();
        assert_eq!(found.name, "My Space");
        let uris: Vec<String> = emulator
            .requests()
            .requests()
            .into_iter()
            .map(|r| r.uri)
            .collect();
        assert_eq!(
            uris,
            [
                "/v1/spaces?name=My+Space".to_owned(),
                format!("/v1/spaces/{}", space.id)
            ]
        );
    }

    #[tokio::test]
    async fn test_create_space() {
        let (_e, client) = start(&[]).await;
        assert_eq!(
            client.create_space("My Space").await.unwrap().name,
            "My Space"
        );
    }

    #[tokio::test]
    async fn test_rename_space() {
        let (_e, client) = start(&[]).await;
        let space = client.create_space("My Space").await.unwrap();
        client.rename_space(space.id, "My Space 42").await.unwrap();
        assert_eq!(
            client
                .find_space("My Space 42")
                .await
                .unwrap()
                .unwrap()
                .name,
            "My Space 42"
        );
    }

    #[tokio::test]
    async fn test_list_charts() {
        let (_e, client) = start(&[]).await;
        let space = client.create_space("My Space").await.unwrap();
        client
            .create_chart(space.id, &Chart::new("CPU 1"))
            .await
            .unwrap();
        client
            .create_chart(space.id, &Chart::new("CPU 2"))
            .await
            .unwrap();
        let names: Vec<String> = client
            .list_charts(space.id)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|c| c.name)
            .collect();
        assert_eq!(names, ["CPU 1", "CPU 2"]);
    }

    #[tokio::test]
    async fn test_update_space() {
        let (_e, client) = start(&[]).await;
        let space = client.create_space("My Space").await.unwrap();
        client.rename_space(space.id, "New Name").await.unwrap();
        assert_eq!(spaces(&client).await.len(), 1);
        let got = client.get_space(space.id).await.unwrap();
        assert_eq!((got.id, got.name.as_str()), (space.id, "New Name"));
    }

    #[tokio::test]
    async fn test_delete_chart() {
        let (_e, client) = start(&[]).await;
        let space = client.create_space("My Space").await.unwrap();
        let chart = client
            .create_chart(space.id, &Chart::new("My Chart"))
            .await
            .unwrap();
        client
            .delete_chart(space.id, chart.id.unwrap())
            .await
            .unwrap();
        assert!(client.list_charts(space.id).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn test_delete_space() {
        let (_e, client) = start(&[]).await;
        let space = client.create_space("My Space").await.unwrap();
        client.delete_space(space.id).await.unwrap();
        assert!(spaces(&client).await.is_empty());
        let err = client.get_space(space.id).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    }

    fn space(value: serde_json::Value) -> Space {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn test_init_with_name() {
        assert_eq!(space(json!({"id": 1, "name": "My Space"})).name, "My Space");
    }

    #[tokio::test]
    async fn test_init_with_empty_name() {
        let (_e, client) = start(&[]).await;
        let err = client.create_space("").await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }

    #[test]
    fn test_init_with_id() {
        assert_eq!(space(json!({"id": 123, "name": "My Space"})).id, 123);
    }

    #[test]
    fn test_init_chart_ids_empty() {
        assert!(
            space(json!({"id": 123, "name": "My Space"}))
                .chart_ids()
                .is_empty()
        );
    }

    #[test]
    fn test_init_with_chart_payload() {
        let s = space(json!({"id": 1, "name": "s", "charts": [{"id": 123}, {"id": 456}]}));
        assert_eq!(s.chart_ids(), vec![123, 456]);
    }

    #[tokio::test]
    async fn test_get_payload() {
        let server = httpmock::MockServer::start_async().await;
        let mock = server
            .mock_async(|when, then| {
                when.method(httpmock::Method::POST)
                    .path("/v1/spaces")
                    .json_body(json!({"name": "My Space"}));
                then.status(201).body(r#"{"id": 1, "name": "My Space"}"#);
            })
            .await;
        let client = AppOpticsClient::builder()
            .with_token("key_test")
            .with_base_url(server.url("/v1"))
            .build()
            .unwrap();
        client.create_space("My Space").await.unwrap();
        mock.assert_async().await;
    }

    #[test]
    fn test_from_dict() {
        let s = space(json!({"id": 42, "name": "test", "charts": [{"id": 123}, {"id": 456}]}));
        assert_eq!(
            (s.id, s.name.as_str(), s.chart_ids()),
            (42, "test", vec![123, 456])
        );
    }

    #[tokio::test]
    async fn test_save_creates_space() {
        let (_e, client) = start(&[]).await;
        let s = client.create_space("not saved").await.unwrap();
        assert!(s.id > 0);
        assert_eq!(client.get_space(s.id).await.unwrap().name, "not saved");
    }

    #[test]
    fn test_new_chart_name() {
        assert_eq!(Chart::new("test").name.as_deref(), Some("test"));
    }

    #[test]
    fn test_new_chart_not_persisted() {
        assert!(Chart::new("test").id.is_none());
    }

    #[test]
    fn test_new_chart_type() {
        assert_eq!(Chart::new("t").chart_type, None, "create_chart sends line");
        assert_eq!(
            Chart::new("t").with_type(ChartType::Stacked).chart_type,
            Some(ChartType::Stacked)
        );
        assert_eq!(
            Chart::new("t").with_type(ChartType::Bignumber).chart_type,
            Some(ChartType::Bignumber)
        );
    }

    #[test]
    fn test_new_chart_attrs() {
        let c = Chart::new("t")
            .with_label("hello")
            .with_range(-5.0, 30.0)
            .with_log_yaxis(true)
            .with_use_last_value(true)
            .with_related_space(1234);
        assert_eq!(c.label.as_deref(), Some("hello"));
        assert_eq!((c.min, c.max), (Some(-5.0), Some(30.0)));
        assert_eq!(
            (c.use_log_yaxis, c.use_last_value, c.related_space),
            (Some(true), Some(true), Some(1234))
        );
    }

    #[test]
    fn test_new_chart_bignumber() {
        let c = Chart::new("t")
            .with_type(ChartType::Bignumber)
            .with_use_last_value(false);
        assert_eq!(c.use_last_value, Some(false));
    }

    async fn add_chart(chart: Chart) -> Chart {
        let (_e, client) = start(&[]).await;
        let space = client.create_space("foo").await.unwrap();
        client.create_chart(space.id, &chart).await.unwrap()
    }

    #[tokio::test]
    async fn test_add_chart_name() {
        assert_eq!(
            add_chart(Chart::new("bar")).await.name.as_deref(),
            Some("bar")
        );
    }

    #[tokio::test]
    async fn test_add_chart_type() {
        let c = add_chart(Chart::new("baz").with_type(ChartType::Stacked)).await;
        assert_eq!(c.chart_type, Some(ChartType::Stacked));
    }

    #[tokio::test]
    async fn test_add_chart_persisted() {
        assert!(add_chart(Chart::new("bar")).await.id.is_some());
    }

    fn with_source(metric: &str, source: &str) -> Stream {
        Stream {
            source: Some(source.into()),
            ..Stream::metric(metric)
        }
    }

    #[tokio::test]
    async fn test_add_chart_streams() {
        let c = add_chart(
            Chart::new("cpu")
                .with_stream(with_source("my.metric", "foo"))
                .with_stream(with_source("my.metric2", "bar")),
        )
        .await;
        assert_eq!(
            (
                c.streams[0].metric.as_deref(),
                c.streams[0].source.as_deref()
            ),
            (Some("my.metric"), Some("foo"))
        );
        assert_eq!(
            (
                c.streams[1].metric.as_deref(),
                c.streams[1].source.as_deref()
            ),
            (Some("my.metric2"), Some("bar"))
        );
    }

    #[tokio::test]
    async fn test_add_chart_bignumber_default() {
        let c = add_chart(Chart::new("baz").with_type(ChartType::Bignumber)).await;
        assert_eq!(c.use_last_value, None);
    }

    #[tokio::test]
    async fn test_add_chart_bignumber_use_last_value() {
        for value in [false, true] {
            let c = add_chart(
                Chart::new("baz")
                    .with_type(ChartType::Bignumber)
                    .with_use_last_value(value),
            )
            .await;
            assert_eq!(c.use_last_value, Some(value));
        }
    }

    #[tokio::test]
    async fn test_add_line_chart() {
        let c = add_chart(
            Chart::new("cpu")
                .with_type(ChartType::Line)
                .with_stream(with_source("my.metric", "my.source")),
        )
        .await;
        assert_eq!(
            (c.name.as_deref(), c.chart_type.clone()),
            (Some("cpu"), Some(ChartType::Line))
        );
        assert_eq!(c.streams.len(), 1);
    }

    #[tokio::test]
    async fn test_add_single_line_chart_default() {
        let c = add_chart(Chart::single_line("cpu", "my.cpu.metric")).await;
        assert_eq!(
            (c.name.as_deref(), c.chart_type.clone()),
            (Some("cpu"), Some(ChartType::Line))
        );
        assert_eq!(c.streams.len(), 1);
        assert_eq!(c.streams[0].metric.as_deref(), Some("my.cpu.metric"));
        assert_eq!(c.streams[0].source, None, "adapted: no legacy source");
    }

    #[tokio::test]
    async fn test_add_single_line_chart_source() {
        let mut chart = Chart::single_line("cpu", "my.cpu.metric");
        chart.streams[0].source = Some("prod*".into());
        assert_eq!(
            add_chart(chart).await.streams[0].source.as_deref(),
            Some("prod*")
        );
    }

    #[tokio::test]
    async fn test_add_single_line_chart_group_functions() {
        let mut chart = Chart::single_line("cpu", "my.cpu.metric");
        chart.streams[0] = chart.streams[0]
            .clone()
            .with_group_function(GroupFunction::Min)
            .with_summary_function(SummaryFunction::Max);
        let c = add_chart(chart).await;
        assert_eq!(c.streams[0].group_function, Some(GroupFunction::Min));
        assert_eq!(c.streams[0].summary_function, Some(SummaryFunction::Max));
    }

    #[tokio::test]
    async fn test_add_stacked_chart() {
        let c = add_chart(
            Chart::new("cpu")
                .with_type(ChartType::Stacked)
                .with_stream(Stream::metric("my.metric")),
        )
        .await;
        assert_eq!(
            (c.name.as_deref(), c.chart_type.clone()),
            (Some("cpu"), Some(ChartType::Stacked))
        );
        assert_eq!(c.streams.len(), 1);
    }

    #[tokio::test]
    async fn test_add_single_stacked_chart() {
        let c = add_chart(Chart::single_stacked("cpu", "my.cpu.metric")).await;
        assert_eq!(c.chart_type, Some(ChartType::Stacked));
        assert_eq!(c.streams.len(), 1);
        assert_eq!(c.streams[0].metric.as_deref(), Some("my.cpu.metric"));
    }

    #[tokio::test]
    async fn test_add_bignumber_chart_default() {
        let c = add_chart(Chart::bignumber("cpu", "my.metric")).await;
        assert_eq!(
            (c.name.as_deref(), c.chart_type.clone()),
            (Some("cpu"), Some(ChartType::Bignumber))
        );
        assert_eq!(c.use_last_value, Some(true));
        assert_eq!(c.streams[0].metric.as_deref(), Some("my.metric"));
        assert_eq!(
            c.streams[0].summary_function,
            Some(SummaryFunction::Average)
        );
        assert_eq!(c.streams[0].group_function, Some(GroupFunction::Average));
    }

    #[tokio::test]
    async fn test_add_bignumber_chart_source() {
        let mut chart = Chart::bignumber("cpu", "my.metric");
        chart.streams[0].source = Some("foo".into());
        assert_eq!(
            add_chart(chart).await.streams[0].source.as_deref(),
            Some("foo")
        );
    }

    #[tokio::test]
    async fn test_add_bignumber_chart_summary_function() {
        let mut chart = Chart::bignumber("cpu", "my.metric");
        chart.streams[0].summary_function = Some(SummaryFunction::Min);
        assert_eq!(
            add_chart(chart).await.streams[0].summary_function,
            Some(SummaryFunction::Min)
        );
    }

    #[tokio::test]
    async fn test_add_bignumber_chart_group_function() {
        let mut chart = Chart::bignumber("cpu", "my.metric");
        chart.streams[0].group_function = Some(GroupFunction::Max);
        assert_eq!(
            add_chart(chart).await.streams[0].group_function,
            Some(GroupFunction::Max)
        );
    }

    #[tokio::test]
    async fn test_add_bignumber_chart_use_last_value() {
        assert_eq!(
            add_chart(Chart::bignumber("cpu", "m")).await.use_last_value,
            Some(true)
        );
        for value in [true, false] {
            let c = add_chart(Chart::bignumber("cpu", "m").with_use_last_value(value)).await;
            assert_eq!(c.use_last_value, Some(value));
        }
    }

    #[tokio::test]
    async fn test_delete_space_model() {
        let (_e, client) = start(&[]).await;
        let space = client.create_space("Delete Me").await.unwrap();
        assert!(client.find_space("Delete Me").await.unwrap().is_some());
        client.delete_space(space.id).await.unwrap();
        assert!(client.find_space("Delete Me").await.unwrap().is_none());
    }
}

mod test_streams {
    use appoptics_client::model::{GroupFunction, Stream, SummaryFunction};
    use serde_json::json;

    fn stream(value: serde_json::Value) -> Stream {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn test_init_metric() {
        assert_eq!(
            Stream::metric("my.metric").metric.as_deref(),
            Some("my.metric")
        );
        assert_eq!(
            stream(json!({"metric": "my.metric"})).metric.as_deref(),
            Some("my.metric")
        );
    }

    #[test]
    fn test_init_source() {
        assert_eq!(
            stream(json!({"metric": "m", "source": "my.source"}))
                .source
                .as_deref(),
            Some("my.source")
        );
    }

    #[test]
    fn test_init_composite() {
        let s = Stream::composite(r#"s("my.metric", "*")"#);
        assert_eq!(s.composite.as_deref(), Some(r#"s("my.metric", "*")"#));
    }

    #[test]
    fn test_composite_defaults_to_none() {
        assert_eq!(Stream::metric("m").composite, None);
    }

    #[test]
    fn test_init_group_function() {
        assert_eq!(Stream::metric("m").group_function, None);
        assert_eq!(
            Stream::metric("m")
                .with_group_function(GroupFunction::Max)
                .group_function,
            Some(GroupFunction::Max)
        );
    }

    #[test]
    fn test_init_summary_function() {
        assert_eq!(Stream::metric("m").summary_function, None);
        assert_eq!(
            Stream::metric("m")
                .with_summary_function(SummaryFunction::Min)
                .summary_function,
            Some(SummaryFunction::Min)
        );
    }

    #[test]
    fn test_init_transform_function() {
        assert_eq!(Stream::metric("m").transform_function, None);
        assert_eq!(
            stream(json!({"transform_function": "x/p*60"}))
                .transform_function
                .as_deref(),
            Some("x/p*60")
        );
    }

    #[test]
    fn test_init_downsample_function() {
        assert_eq!(Stream::metric("m").downsample_function, None);
        assert_eq!(
            stream(json!({"downsample_function": "sum"}))
                .downsample_function
                .as_deref(),
            Some("sum")
        );
    }

    #[test]
    fn test_init_period() {
        assert_eq!(Stream::metric("m").period, None);
        assert_eq!(stream(json!({"period": 60})).period, Some(60));
    }

    #[test]
    fn test_init_type() {
        assert_eq!(Stream::metric("m").stream_type, None);
        assert_eq!(
            stream(json!({"type": "gauge"})).stream_type.as_deref(),
            Some("gauge")
        );
    }

    #[test]
    fn test_init_split_axis() {
        assert_eq!(Stream::metric("m").split_axis, None);
        assert_eq!(stream(json!({"split_axis": true})).split_axis, Some(true));
        assert_eq!(stream(json!({"split_axis": false})).split_axis, Some(false));
    }

    #[test]
    fn test_init_min_max() {
        assert_eq!(
            (Stream::metric("m").min, Stream::metric("m").max),
            (None, None)
        );
        let s = stream(json!({"min": -2, "max": 42}));
        assert_eq!((s.min, s.max), (Some(-2.0), Some(42.0)));
    }

    #[test]
    fn test_init_units() {
        assert_eq!(Stream::metric("m").units_short, None);
        let s = stream(json!({"units_short": "req/s", "units_long": "requests per second"}));
        assert_eq!(s.units_short.as_deref(), Some("req/s"));
        assert_eq!(s.units_long.as_deref(), Some("requests per second"));
    }

    #[test]
    fn test_init_color() {
        assert_eq!(Stream::metric("m").color, None);
        assert_eq!(
            Stream::metric("m").with_color("#f00").color.as_deref(),
            Some("#f00")
        );
    }

    #[test]
    fn test_init_gap_detection() {
        assert_eq!(Stream::metric("m").gap_detection, None);
        assert_eq!(
            stream(json!({"gap_detection": true})).gap_detection,
            Some(true)
        );
        assert_eq!(
            stream(json!({"gap_detection": false})).gap_detection,
            Some(false)
        );
    }

    #[test]
    fn test_init_with_extra_attributes() {
        let s = stream(json!({"color": "#f00", "something": "foo"}));
        assert_eq!(s.color.as_deref(), Some("#f00"));
        assert_eq!(s.extra["something"], "foo");
        assert_eq!(serde_json::to_value(&s).unwrap()["something"], "foo");
    }

    #[test]
    fn test_get_payload() {
        // Adapted: no legacy `"source": "*"`.
        assert_eq!(
            serde_json::to_value(Stream::metric("my.metric")).unwrap(),
            json!({"metric": "my.metric"})
        );
    }

    #[test]
    fn test_payload_all_attributes() {
        let all = json!({
            "metric": "my.metric", "source": "*", "name": "my display name", "type": "gauge",
            "id": 1234, "group_function": "min", "summary_function": "max",
            "transform_function": "x/p", "downsample_function": "min", "period": 60,
            "split_axis": false, "min": 0.0, "max": 42.0, "units_short": "req/s",
            "units_long": "requests per second",
        });
        let s = stream(all.clone());
        assert_eq!(serde_json::to_value(&s).unwrap(), all);
        let mut with_null = all.clone();
        with_null["color"] = serde_json::Value::Null;
        assert_eq!(
            serde_json::to_value(stream(with_null)).unwrap(),
            all,
            "None is omitted"
        );
    }
}
