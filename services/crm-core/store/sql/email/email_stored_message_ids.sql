-- Which of $1 (Message-IDs) are stored already: the same message delivered again.
SELECT message_id FROM email_messages WHERE message_id = ANY($1::text[])
