//! An example consumer: another service reading the conversation events. It creates its own
//! durable consumer on the stream with a subject filter, and prints each event, typed.
//!
//! ```text
//! cargo run -p frontline-tests --example print_events -- \
//!     --nats-url nats://127.0.0.1:4222 --durable my-service --filter 'frontline.post.onMessageAdded.>'
//! ```

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::DeliverPolicy, consumer::pull};
use clap::Parser;
use frontline_shared::ConversationEvent;
use frontline_shared::{Envelope, subject};
use futures::StreamExt;

/// Prints conversation events from the pipeline's stream.
#[derive(Debug, Parser)]
struct Args {
    /// NATS server.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The stream.
    #[arg(long, default_value = subject::DEFAULT_STREAM)]
    stream: String,
    /// This service's durable consumer name (replicas of one service share it).
    #[arg(long, default_value = "print-events")]
    durable: String,
    /// Which events: a subject filter.
    #[arg(long, default_value = "frontline.post.>")]
    filter: String,
}

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let args = Args::parse();
    let client = async_nats::connect(&args.nats_url).await?;
    let stream = jetstream::new(client).get_stream(&args.stream).await?;
    let consumer = stream
        .get_or_create_consumer(
            &args.durable,
            pull::Config {
                durable_name: Some(args.durable.clone()),
                filter_subject: args.filter.clone(),
                ack_policy: AckPolicy::Explicit,
                deliver_policy: DeliverPolicy::All,
                ..pull::Config::default()
            },
        )
        .await?;
    println!(
        "consuming {} on {} as {}",
        args.filter, args.stream, args.durable
    );
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        match Envelope::from_slice(&message.payload) {
            Ok(envelope) => match ConversationEvent::from_envelope(&envelope) {
                ConversationEvent::MessageAdded(m) => {
                    println!(
                        "{} new message #{:?} from {:?}: {:?}",
                        envelope.received_at, m.index, m.author, m.body
                    );
                }
                ConversationEvent::ParticipantAdded(p) => {
                    println!(
                        "{} participant {:?} joined {:?}",
                        envelope.received_at, p.participant_sid, p.conversation_sid
                    );
                }
                other => println!("{} {:?}", envelope.received_at, other.event_type()),
            },
            Err(err) => eprintln!("not an envelope on {}: {err}", message.subject),
        }
        // Acknowledge once your side effect is done; an unacknowledged event comes back.
        message.ack().await?;
    }
    Ok(())
}
