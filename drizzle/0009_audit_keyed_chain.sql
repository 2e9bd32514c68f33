ALTER TABLE `audit_events` ADD `mac` text;--> statement-breakpoint
ALTER TABLE `audit_events` ADD `key_id` text;