# Every ingest source stages (issue 15): the hook table becomes the staging table of all
# deliveries, with the shard its fold claims by.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0002_client_hooks'),
    ]

    operations = [
        migrations.RenameModel('StagedHook', 'StagedEvent'),
        migrations.AddField(
            model_name='stagedevent',
            name='shard',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name='stagedevent',
            name='adapter',
            field=models.CharField(choices=[('claude-code', 'Claude Code'), ('cursor', 'Cursor'), ('claude-code-client', 'Claude Code Client'), ('event', 'Event'), ('otel-event', 'Otel Event'), ('otel-metrics', 'Otel Metrics')], max_length=20),
        ),
        migrations.AlterField(
            model_name='stagedevent',
            name='body',
            field=models.TextField(help_text='the cleaned delivery JSON'),
        ),
        migrations.AddIndex(
            model_name='stagedevent',
            index=models.Index(condition=models.Q(('failed_at__isnull', True)), fields=['shard', 'id'], name='staged_waiting_shard'),
        ),
    ]
