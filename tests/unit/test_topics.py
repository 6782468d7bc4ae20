"""The topics created before the consumer subscribes include every table's changelog."""

from worker.app import create_app
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
