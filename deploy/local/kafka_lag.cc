// kafka-lag: prints how many messages a consumer group has not committed yet on a topic (the
// sum over partitions of high watermark minus committed offset), so that deploy/run.sh can let
// crm-core drain before it stops the in-memory dev broker. Exit 1 when Kafka does not answer.
//   kafka-lag BROKERS GROUP TOPIC

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <memory>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fputs("usage: kafka-lag BROKERS GROUP TOPIC\n", stderr);
    return 2;
  }
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], error, sizeof(error)) !=
          RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "group.id", argv[2], error, sizeof(error)) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "log_level", "0", error, sizeof(error)) != RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "kafka-lag: %s\n", error);
    return 1;
  }
  // Never joins the group (no subscribe): it only reads the group's committed offsets.
  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> consumer(
      rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof(error)), rd_kafka_destroy);
  if (!consumer) {
    std::fprintf(stderr, "kafka-lag: %s\n", error);
    return 1;
  }
  const rd_kafka_metadata_t* metadata = nullptr;
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> topic(
      rd_kafka_topic_new(consumer.get(), argv[3], nullptr), rd_kafka_topic_destroy);
  if (rd_kafka_metadata(consumer.get(), 0, topic.get(), &metadata, 5000) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      metadata->topic_cnt != 1) {
    std::fprintf(stderr, "kafka-lag: no metadata for %s\n", argv[3]);
    return 1;
  }
  int partitions = metadata->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(metadata);
  std::unique_ptr<rd_kafka_topic_partition_list_t, decltype(&rd_kafka_topic_partition_list_destroy)>
      list(rd_kafka_topic_partition_list_new(partitions), rd_kafka_topic_partition_list_destroy);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), argv[3], p);
  }
  if (rd_kafka_committed(consumer.get(), list.get(), 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fputs("kafka-lag: committed offsets not available\n", stderr);
    return 1;
  }
  long long lag = 0;
  for (int i = 0; i < list->cnt; ++i) {
    int64_t low = 0;
    int64_t high = 0;
    if (rd_kafka_query_watermark_offsets(consumer.get(), argv[3], list->elems[i].partition, &low,
                                         &high, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::fputs("kafka-lag: watermarks not available\n", stderr);
      return 1;
    }
    int64_t committed = list->elems[i].offset >= 0 ? list->elems[i].offset : low;
    lag += high > committed ? high - committed : 0;
  }
  std::printf("%lld\n", lag);
  return 0;
}
