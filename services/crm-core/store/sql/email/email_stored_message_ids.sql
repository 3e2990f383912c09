-- Which of $1 (Message-IDs) are stored already, with their sender: the same Message-ID from the
-- same sender is the same message delivered again.
SELECT message_id, from_address FROM email_messages WHERE message_id = ANY($1::text[])
