CREATE TABLE `saml_seen_assertions` (
	`connection_id` text NOT NULL,
	`assertion_id` text NOT NULL,
	`seen_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`connection_id`, `assertion_id`),
	FOREIGN KEY (`connection_id`) REFERENCES `sso_connections`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `saml_seen_assertions_expires_idx` ON `saml_seen_assertions` (`expires_at`);--> statement-breakpoint
ALTER TABLE `sso_connections` ADD `saml_idp_entity_id` text;--> statement-breakpoint
ALTER TABLE `sso_connections` ADD `saml_idp_sso_url` text;--> statement-breakpoint
ALTER TABLE `sso_connections` ADD `saml_idp_certificates` text;--> statement-breakpoint
ALTER TABLE `sso_connections` ADD `saml_allow_idp_initiated` integer DEFAULT false NOT NULL;