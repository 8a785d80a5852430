/* global cockpit */
import React from 'react';
import { createRoot } from 'react-dom/client';

import '@patternfly/react-core/dist/styles/base.css';
import './app.css';
import { Application } from './app.jsx';

document.addEventListener('DOMContentLoaded', () => {
    cockpit.translate();
    createRoot(document.getElementById('app')).render(<Application />);
});
