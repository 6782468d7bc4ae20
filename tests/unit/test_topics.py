"""The topics created before the consumer subscribes include every table's changelog; the harness names them alike."""

from worker.app import create_app
from worker.harness.worker_process import Names
from worker.settings import Settings
from worker.streams.topics import new_topics


def test_every_changelog_is_created_up_front_compacted_and_co_partitioned() -> None:
    settings = Settings(app_id="t-app", partitions=6)
    app = create_app(settings)
    created = {t.name: t for t in new_topics(app.created_topics(), 1)}
    changelogs = {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    assert f"{settings.app_id}-customers-changelog" in changelogs
    for name in changelogs:
        assert created[name].num_partitions == settings.partitions
        assert created[name].topic_configs["cleanup.policy"] == "compact"
    assert created[f"{settings.app_id}-ledger-by-customer"].num_partitions == settings.partitions
    assert created[settings.topic_summaries].topic_configs["cleanup.policy"] == "compact"
    assert set(settings.input_topics) <= set(created)


def test_the_harness_names_the_app_s_internal_topics_as_the_app_does() -> None:
    names = Names("h")
    app = create_app(Settings(**{k.lower(): v for k, v in names.settings().items()}))
    assert names.by_customer == app.ledger_topics.by_customer.get_topic_name()
    assert names.customers_changelog == app.tables["customers"].changelog_topic.get_topic_name()
