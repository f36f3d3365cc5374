// The console's pages. A page is one module exporting a component and one line here: `path` is matched
// against the location hash (`:name` segments become params), `nav` puts it in the header.
import { AgentPage } from './agent.js';
import { AlertsPage } from './alerts.js';
import { ApprovalsPage } from './approvals.js';
import { AuditPage } from './audit.js';
import { DependenciesPage } from './dependencies.js';
import { FleetPage } from './fleet.js';
import { ShadowPage } from './shadow.js';

export const PAGES = [
  { path: '/fleet', title: 'Fleet', nav: true, component: FleetPage },
  { path: '/agents/:id', title: 'Agent', component: AgentPage },
  { path: '/agents/:id/dependencies', title: 'Dependencies', component: DependenciesPage },
  { path: '/approvals', title: 'Approvals', nav: true, component: ApprovalsPage },
  { path: '/alerts', title: 'Alerts', nav: true, component: AlertsPage },
  { path: '/shadow', title: 'Shadow policies', nav: true, component: ShadowPage },
  { path: '/audit', title: 'Audit log', nav: true, component: AuditPage },
];
