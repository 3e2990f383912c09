-- UpdateSettings replaces the routes.
DELETE FROM email_routes
